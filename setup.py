import os

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

native = Extension(
    "diyc._native",
    sources=[
        "_native/_native.pyx",
        "_native/spawn.c",
        "_native/mounts.c",
        "_native/process.c",
        "_native/caps.c",
        "_native/seccomp.c",
        "_native/error.c",
    ],
    include_dirs=["_native"],
    extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
)


class BuildWithHelpers(build_ext):
    """Also builds two small static executables (no Python in them):
    diyc-shim, the supervisor of a detached container (~1 MB resident), and
    diyc-init, the PID 1 of `run --init`, mounted into the container."""

    def run(self):
        super().run()
        target_dir = "diyc" if self.inplace else os.path.join(self.build_lib, "diyc")
        for name in ("shim", "init"):
            objects = self.compiler.compile([f"_native/{name}.c"], output_dir=self.build_temp,
                                            extra_postargs=["-Os", "-Wall"])
            self.compiler.link_executable(objects, f"diyc-{name}", output_dir=target_dir,
                                          extra_postargs=["-static"])


setup(ext_modules=cythonize([native], language_level=3, quiet=True),
      cmdclass={"build_ext": BuildWithHelpers})
