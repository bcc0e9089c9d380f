"""Every module imports without the optional packages (torch, tensorrt, cuda, ultralytics, jtop, ...)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

OPTIONAL = [
    "torch",
    "torchvision",
    "tensorrt",
    "cuda",
    "pycuda",
    "ultralytics",
    "jtop",
    "matplotlib",
    "pycocotools",
    "motmetrics",
    "trackeval",
    "filterpy",
    "onnxslim",
    "onnxscript",
    "pymap3d",
    "pyproj",
]


def test_every_module_imports_without_optional_packages():
    code = textwrap.dedent(
        f"""
        import importlib, importlib.abc, pkgutil, sys

        BLOCKED = {OPTIONAL!r}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"blocked optional package {{name}}")
                return None

        sys.meta_path.insert(0, Block())
        import edgedet
        names = [m.name for m in pkgutil.walk_packages(edgedet.__path__, "edgedet.")]
        for name in names:
            importlib.import_module(name)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not leaked, leaked
        print(len(names))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip()) > 30


def test_cli_help_starts_without_optional_packages():
    code = textwrap.dedent(
        f"""
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {OPTIONAL!r}:
                    raise ImportError(name)
                return None

        sys.meta_path.insert(0, Block())
        from edgedet.cli import main
        sys.exit(main(["--help"]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "convert" in out.stdout and "run" in out.stdout
