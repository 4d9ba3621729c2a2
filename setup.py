"""Package data for the wheel: the bundled `schemas/` and `rules/` live at the top of the checkout
(where the policy team and their editors look for them), so the build copies them into the
package as `engine/_bundled/`, where `engine.core.resources` finds them once installed.
Everything else is declared in pyproject.toml."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = ("schemas", "rules")  # keep equal to engine.core.resources


class build_py_with_bundled(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout itself
        for name in BUNDLED:
            target = Path(self.build_lib) / "engine" / "_bundled" / name
            shutil.copytree(name, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


setup(cmdclass={"build_py": build_py_with_bundled})
