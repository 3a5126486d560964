"""qmspec as a user installs it: the wheel built from the repository, installed into a clean virtual environment
(dependencies from the package index), run from outside the source tree."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # builds a wheel and installs its dependencies: half a minute
ROOT = Path(__file__).parent.parent


def test_the_wheel_installs_into_a_clean_venv_and_validates_a_spec(tmp_path):
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
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("qmspec-*.whl"))
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
    version = subprocess.run([str(venv / "bin" / "qmspec"), "--version"], cwd=outside, capture_output=True, text=True)
    assert version.returncode == 0 and "0.1.0" in version.stdout
    validated = subprocess.run([str(venv / "bin" / "qmspec"), "validate", "spec.yaml"], cwd=outside, capture_output=True, text=True)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import qmspec; print(qmspec.__file__)"], cwd=outside, capture_output=True, text=True)
    assert where.stdout.startswith(str(venv))
