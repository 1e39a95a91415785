import io

import numpy as np
import pytest
import soundfile as sf

from espnet3.data.audio import _pcm_wav_header, load_audio, to_int16
from espnet3.errors import Espnet3Error


def test_every_value_shape_gives_the_same_samples(an4_utterances):
    source = an4_utterances[0]
    raw = open(source["path"], "rb").read()
    values = [
        source["path"],
        {"bytes": raw, "path": "x.wav"},
        {"bytes": None, "path": source["path"]},
        {"array": source["samples"] / 32768.0, "sampling_rate": 16000},
    ]
    for value in values:
        audio = load_audio(value)
        assert (audio.sampling_rate, audio.num_samples) == (16000, len(source["samples"]))
        np.testing.assert_array_equal(audio.int16(), source["samples"])
    bare = load_audio(source["samples"], 16000)
    np.testing.assert_array_equal(bare.int16(), source["samples"])


def test_stereo_channels_first_is_transposed():
    stereo = np.stack([np.arange(100, dtype=np.int16), -np.arange(100, dtype=np.int16)])
    audio = load_audio({"array": stereo, "sampling_rate": 8000})
    assert (audio.num_channels, audio.num_samples) == (2, 100)
    buf = io.BytesIO()
    sf.write(buf, audio.int16(), 8000, format="WAV")
    assert load_audio({"bytes": buf.getvalue()}).num_channels == 2


def test_errors_say_what_was_found(tmp_path):
    with pytest.raises(Espnet3Error, match="audio is missing"):
        load_audio(None)
    with pytest.raises(Espnet3Error, match=r"audio \(5 bytes\) is unreadable"):
        load_audio({"bytes": b"12345"})
    with pytest.raises(Espnet3Error, match="bare array without a sampling rate"):
        load_audio(np.zeros(4))
    with pytest.raises(Espnet3Error, match="neither 'array', 'bytes' nor 'path'"):
        load_audio({"bytes": None, "path": None})
    with pytest.raises(Espnet3Error, match="cannot read audio from a int"):
        load_audio(3)
    assert to_int16(np.array([1.5, -1.5])).tolist() == [32767, -32768]


@pytest.mark.parametrize("container", ["WAV", "WAVEX"])
@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT"])
@pytest.mark.parametrize("channels", [1, 2])
def test_wav_header_reading_agrees_with_soundfile(container, subtype, channels):
    """The fast header path must report what soundfile does, whole or truncated, or step aside."""
    rng = np.random.default_rng(channels)
    samples = rng.uniform(-0.5, 0.5, (1001, channels)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, samples, 11025, format=container, subtype=subtype)
    whole = buf.getvalue()
    if container == "WAV" and subtype.startswith("PCM"):
        assert _pcm_wav_header(whole) is not None  # the common case takes the fast path
    for data in (whole, whole[:-3], whole[: len(whole) // 2]):
        info = sf.info(io.BytesIO(data))
        audio = load_audio({"bytes": data})
        assert (audio.sampling_rate, audio.num_samples, audio.num_channels) == (
            info.samplerate,
            info.frames,
            info.channels,
        )
        np.testing.assert_array_equal(audio.read(), sf.read(io.BytesIO(data), dtype="float32")[0])


def test_a_wav_cut_inside_its_header_is_unreadable_not_a_crash():
    buf = io.BytesIO()
    sf.write(buf, np.zeros(10, np.int16), 8000, format="WAV")
    for size in (13, 30, 36):
        with pytest.raises(
            Espnet3Error, match=rf"audio \({size} bytes\) is unreadable: [A-Z]"
        ) as e:
            load_audio({"bytes": buf.getvalue()[:size]})
        assert "BytesIO" not in str(e.value)


def test_a_wav_header_without_samples_is_an_error():
    buf = io.BytesIO()
    sf.write(buf, np.zeros(10, np.int16), 8000, format="WAV")
    header_only = buf.getvalue()[:44]
    with pytest.raises(Espnet3Error, match=r"audio \(44 bytes\) is (empty|unreadable)"):
        load_audio({"bytes": header_only})
