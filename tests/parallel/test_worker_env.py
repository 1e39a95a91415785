"""Setup environments: built once per process, injected by name or through ``**kwargs``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from espnet3.errors import ConfigError, ItemError
from espnet3.parallel.worker_env import bind_env, build_env, process_env


def named(x, scale, offset=0):
    return x * scale + offset


def var_kw(x, **kwargs):
    return x, sorted(kwargs)


def test_env_is_injected_by_parameter_name_only_where_accepted():
    call = bind_env(named, {"scale": 3, "model": object()}, {"offset": 1})
    assert call(2) == 7


def test_env_is_injected_whole_into_var_kwargs():
    call = bind_env(var_kw, {"scale": 3, "model": "m"}, {"k": 1})
    assert call(5) == (5, ["k", "model", "scale"])


def test_name_in_both_env_and_call_kwargs_is_an_error():
    with pytest.raises(ConfigError, match=r"\['scale'\] are given both by the setup environment"):
        bind_env(named, {"scale": 3}, {"scale": 4})


def test_builtin_without_signature_gets_no_env():
    assert bind_env(abs, {"scale": 3}, {})(-2) == 2


def test_setup_returning_a_non_mapping_is_an_error():
    with pytest.raises(ConfigError, match=r"setup .*<lambda> must return a dict .* got list"):
        build_env(lambda: [1])


def test_failing_setup_is_named_and_remembered():
    calls = []

    def broken():
        calls.append(1)
        raise OSError("no model file")

    for _ in range(2):
        with pytest.raises(ItemError, match=r"setup .*broken failed: OSError: no model file"):
            process_env("test-broken", broken)
    assert calls == [1]


def test_process_env_builds_once_per_key():
    calls = []

    def setup():
        calls.append(1)
        return {"n": len(calls)}

    first = process_env("test-once", setup)
    assert process_env("test-once", setup) is first
    assert calls == [1]


def test_sequential_work_never_imports_dask():
    code = (
        "import sys\n"
        "from espnet3.parallel import get_client, parallel_for, parallel_map\n"
        "with get_client(setup_fn=lambda: {'k': 2}) as client:\n"
        "    assert client is None\n"
        "    assert parallel_map(lambda x, k: x * k, [1, 2]) == [2, 4]\n"
        "assert sorted(parallel_for(abs, [-1])) == [1]\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
