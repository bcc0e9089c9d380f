import pytest

pytest.importorskip("pymap3d", reason="tests/geo need pymap3d (pip install 'edgedet[geo]')")
