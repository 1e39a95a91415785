"""The ``container:`` part of ``parallel:``: the image workers (and shards) run in, and how.

A :class:`ContainerSpec` turns into the argv that runs a command inside the image:
:meth:`ContainerSpec.exec_prefix` (prepend it to any command) and
:meth:`ContainerSpec.worker_python` (the ``python`` of a dask-jobqueue job script).

Apptainer/Singularity run with ``--cleanenv`` by default, so nothing of the submitting shell
leaks into the image; what a job needs is forwarded explicitly: ``CUDA_VISIBLE_DEVICES``,
``DASK_*`` and ``MALLOC_*`` (allocator tuning) and the variables the scheduler gives its jobs
(:attr:`ContainerSpec.job_variables`, set from the config's scheduler), read in the job when
they exist, and the configured ``env``.

Example:
    >>> import pathlib, tempfile
    >>> sif = pathlib.Path(tempfile.mkdtemp()) / "espnet3.sif"
    >>> sif.touch()  # from_any checks that the image exists
    >>> spec = ContainerSpec.from_any({"image": str(sif), "gpus": True,
    ...                                "binds": ["/data"], "cleanenv": False})
    >>> spec.exec_prefix(check_image=False)[:-1]   # then str(sif)
    ['apptainer', 'exec', '--nv', '--env', 'PYTHONNOUSERSITE=1', '-B', '/data']
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError, did_you_mean
from espnet3.utils.checks import check_keys

HPC_RUNTIMES = ("apptainer", "singularity")
WORKSTATION_RUNTIMES = ("docker", "podman")
RUNTIMES = HPC_RUNTIMES + WORKSTATION_RUNTIMES

#: Keys of ``parallel.container`` and what they mean (for error messages and docs).
KNOWN_KEYS = {
    "runtime": "apptainer | singularity | docker | podman",
    "image": "a .sif path (apptainer/singularity), an image tag (docker/podman), or auto",
    "gpus": "make the host's GPUs visible (apptainer --nv, docker --gpus all)",
    "binds": "host paths to mount, 'src' or 'src:dst[:ro]'",
    "env": "environment variables to set inside the container",
    "cleanenv": "apptainer/singularity: start from a clean environment (default true)",
    "extra_args": "further arguments of `<runtime> exec` / `<runtime> run`",
}

#: Variables set inside the image whatever the config says: user site-packages of the host
#: home directory would shadow the image's packages.
FIXED_ENV = {"PYTHONNOUSERSITE": "1"}

#: Variables forwarded into a clean environment when the job has them, whatever the
#: scheduler: names, and prefixes (ending in ``_``) of names.
FORWARDED = ("CUDA_VISIBLE_DEVICES", "DASK_", "MALLOC_")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def forwarded_pattern(variables: Sequence[str]) -> str:
    """A POSIX ERE matching the names ``variables`` gives: ``X_`` matches every ``X_...``.

    Example:
        >>> forwarded_pattern(["CUDA_VISIBLE_DEVICES", "DASK_"])
        'CUDA_VISIBLE_DEVICES|DASK_[A-Za-z0-9_]+'
    """
    for name in variables:
        if not _VARIABLE.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name or prefix")
    return "|".join(f"{v}[A-Za-z0-9_]+" if v.endswith("_") else v for v in variables)


def _forward_script(prefix: str, variables: Sequence[str]) -> str:
    # Values exist only when the job runs, so a small sh loop exports each present one under
    # the runtime's prefix (APPTAINERENV_X becomes X inside even with --cleanenv), then execs
    # the rest of the argv.
    return (
        f"for v in $(env | grep -oE '^({forwarded_pattern(variables)})='); do v=${{v%=}}; "
        f'eval "export {prefix}$v=\\"\\${{$v}}\\""; done; exec "$@"'
    )


#: Where Apptainer/Singularity tell a process which image it runs in.
IMAGE_VARIABLES = ("APPTAINER_CONTAINER", "SINGULARITY_CONTAINER")


@dataclass(frozen=True)
class ContainerSpec:
    """A validated ``parallel.container`` section. Build it with :meth:`from_any`."""

    image: str = "auto"
    runtime: str = "apptainer"
    gpus: bool = False
    binds: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cleanenv: bool = True
    extra_args: tuple[str, ...] = ()
    #: The variables the scheduler gives its jobs, forwarded besides :data:`FORWARDED` (not a
    #: key of the section: ``ParallelConfig`` sets it from the scheduler of ``env``).
    job_variables: tuple[str, ...] = ()

    @classmethod
    def from_any(cls, value: Any, job_variables: Sequence[str] = ()) -> ContainerSpec | None:
        """Validate a mapping (or ``None`` = no container) into a spec, forwarding
        ``job_variables`` too.

        Example:
            >>> ContainerSpec.from_any({"runtime": "podman", "image": "espnet3:0.1.0-gpu"}).runtime
            'podman'
            >>> ContainerSpec.from_any({"imgae": "x.sif"})
            Traceback (most recent call last):
            ...
            espnet3.errors.ConfigError: parallel.container: unknown key 'imgae' (did you mean 'image'?); known keys: runtime, image, gpus, binds, env, cleanenv, extra_args
        """
        if value is None:
            return None
        if isinstance(value, ContainerSpec):
            return replace(value, job_variables=tuple(job_variables))
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"parallel.container must be a mapping (runtime, image, ...), got {value!r}"
            )
        check_keys(value, KNOWN_KEYS, "parallel.container")
        runtime = str(value.get("runtime") or "apptainer").lower()
        if runtime not in RUNTIMES:
            raise ConfigError(
                f"parallel.container.runtime {runtime!r} is not supported"
                f"{did_you_mean(runtime, RUNTIMES)}; supported: {', '.join(RUNTIMES)}"
            )
        image = value.get("image", "auto")
        if not isinstance(image, str) or not image:
            raise ConfigError(
                f"parallel.container.image must be a path, an image tag or 'auto', got {image!r}"
            )
        if image != "auto" and runtime not in WORKSTATION_RUNTIMES and "://" not in image:
            if not os.path.isfile(image):
                raise ConfigError(
                    f"parallel.container.image {image!r} does not exist here: build it "
                    "(containers/build.sh), fix the path, or use image: auto inside the image"
                )
        if image == "auto" and runtime in WORKSTATION_RUNTIMES:
            raise ConfigError(
                f"parallel.container.image: auto needs runtime apptainer or singularity "
                f"(the image of the running process is known only there): give the {runtime} "
                f"image tag, e.g. image: espnet3:0.1.0-gpu"
            )
        return cls(
            image=image,
            runtime=runtime,
            gpus=_flag("gpus", value.get("gpus", False)),
            binds=_strings("binds", value.get("binds") or ()),
            env=_env(value.get("env") or {}),
            cleanenv=_flag("cleanenv", value.get("cleanenv", True)),
            extra_args=_strings("extra_args", value.get("extra_args") or ()),
            job_variables=tuple(job_variables),
        )

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that :meth:`from_any` (given the same ``job_variables``) turns back
        into an equal spec."""
        return {
            "runtime": self.runtime,
            "image": self.image,
            "gpus": self.gpus,
            "binds": list(self.binds),
            "env": dict(self.env),
            "cleanenv": self.cleanenv,
            "extra_args": list(self.extra_args),
        }

    def resolved_image(self) -> str:
        """The image to run: ``auto`` resolved, and a SIF path checked to exist.

        Raises :class:`ConfigError` naming the image and what to do, so that a wrong image
        fails before any job is submitted rather than in every job's log.
        """
        image = self.image
        if image == "auto":
            # The runtime names the image this process runs in by its path on the host, which
            # need not be bound inside (a SIF under /shared/images): nothing to check here.
            image = next((os.environ[v] for v in IMAGE_VARIABLES if os.environ.get(v)), "")
            if not image:
                raise ConfigError(
                    "parallel.container.image is 'auto', but this process does not run inside an "
                    "Apptainer/Singularity image (neither APPTAINER_CONTAINER nor "
                    "SINGULARITY_CONTAINER is set): start it with `apptainer exec IMAGE.sif "
                    "python ...`, or set image to the .sif path"
                )
        elif self.runtime in HPC_RUNTIMES and not Path(image).exists():
            raise ConfigError(
                f"parallel.container.image {image!r} does not exist: build it with "
                f"containers/build.sh and copy it to a path every node can read"
            )
        return image

    def exec_prefix(self, extra_binds: Sequence[str] = (), check_image: bool = True) -> list[str]:
        """The argv that runs the command appended to it inside the image.

        ``extra_binds`` are mounted besides ``binds`` (e.g. a job log directory).
        ``check_image=False`` skips :meth:`resolved_image` (an ``auto`` image stays ``auto``).

        Example:
            >>> spec = ContainerSpec.from_any({"runtime": "docker", "image": "espnet3:gpu"})
            >>> spec.exec_prefix()[:5]
            ['docker', 'run', '--rm', '--network', 'host']
        """
        image = self.resolved_image() if check_image else self.image
        binds = list(dict.fromkeys([*self.binds, *extra_binds]))
        env = {**FIXED_ENV, **self.env}
        if self.runtime in HPC_RUNTIMES:
            return self._apptainer_prefix(image, binds, env)
        return self._docker_prefix(image, binds, env)

    def worker_python(self, extra_binds: Sequence[str] = (), check_image: bool = True) -> str:
        """The ``python`` command of a job script: the image's python behind :meth:`exec_prefix`.

        Example:
            >>> import pathlib, tempfile
            >>> sif = pathlib.Path(tempfile.mkdtemp()) / "e.sif"
            >>> sif.touch()
            >>> spec = ContainerSpec.from_any({"image": str(sif), "cleanenv": False})
            >>> spec.worker_python(check_image=False).replace(str(sif), "e.sif")
            'apptainer exec --env PYTHONNOUSERSITE=1 e.sif python'
        """
        return shlex.join([*self.exec_prefix(extra_binds, check_image), "python"])

    def _apptainer_prefix(self, image: str, binds: list[str], env: dict[str, str]) -> list[str]:
        argv = [self.runtime, "exec"]
        if self.gpus:
            argv.append("--nv")
        if self.cleanenv:
            argv.append("--cleanenv")
        for name, value in env.items():
            argv += ["--env", f"{name}={value}"]
        for bind in binds:
            argv += ["-B", bind]
        argv += [*self.extra_args, image]
        if not self.cleanenv:
            return argv
        prefix = f"{self.runtime.upper()}ENV_"
        script = _forward_script(prefix, [*FORWARDED, *self.job_variables])
        return ["sh", "-c", script, "espnet3-forward-env", *argv]

    def _docker_prefix(self, image: str, binds: list[str], env: dict[str, str]) -> list[str]:
        # Host network: the worker reaches a scheduler on loopback; same uid: files it writes
        # into binds stay the user's; the working directory is mounted as apptainer does.
        cwd = os.getcwd()
        argv = [self.runtime, "run", "--rm", "--network", "host"]
        argv += ["--user", f"{os.getuid()}:{os.getgid()}"]
        if self.gpus:
            gpus = (
                ["--gpus", "all"]
                if self.runtime == "docker"
                else ["--device", "nvidia.com/gpu=all"]
            )
            argv += gpus
        argv += ["-e", "CUDA_VISIBLE_DEVICES"]  # passed on only when set
        for name, value in env.items():
            argv += ["-e", f"{name}={value}"]
        for bind in [*binds, cwd]:
            argv += ["-v", bind if ":" in bind else f"{bind}:{bind}"]
        return [*argv, "-w", cwd, *self.extra_args, image]


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"parallel.container.{name} must be true or false, got {value!r}")
    return value


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(
            f"parallel.container.{name} must be a list of strings, got {value!r}: "
            f"write it as [{value!r}]"
        )
    if not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"parallel.container.{name} must hold non-empty strings, got {value!r}")
    return tuple(value)


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"parallel.container.env must be a mapping NAME: value, got {value!r}")
    for name in value:
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(
                f"parallel.container.env: {name!r} is not a valid environment variable name"
            )
    return {name: str(v) for name, v in value.items()}


__all__ = ["ContainerSpec", "RUNTIMES", "FORWARDED", "forwarded_pattern"]
