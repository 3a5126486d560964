"""qmspec as a user installs it: the sdist and the wheel `python -m build` makes from the repository's tracked files,
installed into a clean virtual environment (dependencies from the package index), run from outside the source tree."""
from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from qmspec import __version__

pytestmark = pytest.mark.e2e  # builds a wheel and installs its dependencies: half a minute
ROOT = Path(__file__).parent.parent


def test_the_sdist_and_the_wheel_install_into_a_clean_venv_and_validate_a_spec(tmp_path):
    source = tmp_path / "source"  # the tracked files, symlinks kept, as a clone has them
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        origin = ROOT / name
        if origin.is_symlink():
            target.symlink_to(origin.readlink())
        elif origin.is_file():
            target.write_bytes(origin.read_bytes())
    built = subprocess.run([sys.executable, "-m", "build", "--sdist", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob(f"qmspec-{__version__}-*.whl"))
    sdist = next((tmp_path / "dist").glob(f"qmspec-{__version__}.tar.gz"))
    assert {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name} >= {"action.yml", "CHANGELOG.md", "qmspec/cli.py"}
    contents = zipfile.ZipFile(wheel).namelist()
    for package in ("qmspec/planning/", "qmspec/applying/", "qmspec/embed/", "qmspec/reports/"):
        assert any(name.startswith(package) for name in contents), package
    assert "qmspec/qmspec.schema.json" in contents  # the schema validate reads, a symlink in the repository

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr[-2000:]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "spec.yaml").write_text((ROOT / "specs" / "quickstart.yaml").read_text(encoding="utf-8").replace("data/", str(ROOT / "specs" / "data") + "/"))
    runs_from(venv, outside)
    from_sdist = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--force-reinstall", "--no-deps", str(sdist)],
                                capture_output=True, text=True)
    assert from_sdist.returncode == 0, from_sdist.stderr[-2000:]
    runs_from(venv, outside)


def runs_from(venv: Path, outside: Path) -> None:
    version = subprocess.run([str(venv / "bin" / "qmspec"), "--version"], cwd=outside, capture_output=True, text=True)
    assert version.returncode == 0 and __version__ in version.stdout
    validated = subprocess.run([str(venv / "bin" / "qmspec"), "validate", "spec.yaml"], cwd=outside, capture_output=True, text=True)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import qmspec; print(qmspec.__file__)"], cwd=outside, capture_output=True, text=True)
    assert where.stdout.startswith(str(venv))
