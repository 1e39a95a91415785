import numpy as np
import pytest
import soundfile as sf

from espnet3.data.sphere import read_sphere, read_sphere_header
from espnet3.errors import Espnet3Error


def test_reads_every_an4_file_like_libsndfile(an4_sphere_dir):
    files = sorted(an4_sphere_dir.glob("wav/*/*/*.sph"))
    assert len(files) == 8
    for path in files:
        samples, rate = read_sphere(path)
        reference, ref_rate = sf.read(path, dtype="int16")
        assert rate == ref_rate == 16000
        assert samples.dtype == np.int16
        assert samples.shape[0] == read_sphere_header(path)["sample_count"]
        np.testing.assert_array_equal(samples, reference)


def test_big_endian_and_stereo(tmp_path):
    header = (
        b"NIST_1A\n   1024\nsample_rate -i 8000\nsample_n_bytes -i 2\n"
        b"sample_byte_format -s2 10\nchannel_count -i 2\nsample_count -i 2\nend_head\n"
    )
    data = np.array([[1, -1], [300, -300]], dtype=">i2")
    path = tmp_path / "be.sph"
    path.write_bytes(header.ljust(1024) + data.tobytes() + b"\0\0")
    samples, rate = read_sphere(path)
    assert rate == 8000
    np.testing.assert_array_equal(samples, data.astype(np.int16))


def test_refuses_compressed_and_non_sphere(tmp_path):
    shorten = tmp_path / "s.sph"
    shorten.write_bytes(
        b"NIST_1A\n   1024\nsample_coding -s26 pcm,embedded-shorten-v2.00\nend_head\n".ljust(1024)
    )
    with pytest.raises(Espnet3Error, match="only uncompressed 16-bit PCM.*sph2pipe"):
        read_sphere(shorten)
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(10, np.int16), 16000)
    with pytest.raises(Espnet3Error, match="x.wav is not a NIST SPHERE file"):
        read_sphere(wav)
