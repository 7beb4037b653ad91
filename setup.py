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


class BuildWithShim(build_ext):
    """Also builds diyc-shim, the supervisor of detached containers: a small
    static executable (no Python in it: ~1 MB resident per container)."""

    def run(self):
        super().run()
        target_dir = "diyc" if self.inplace else os.path.join(self.build_lib, "diyc")
        objects = self.compiler.compile(["_native/shim.c"], output_dir=self.build_temp,
                                        extra_postargs=["-Os", "-Wall"])
        self.compiler.link_executable(objects, "diyc-shim", output_dir=target_dir,
                                      extra_postargs=["-static"])


setup(ext_modules=cythonize([native], language_level=3, quiet=True),
      cmdclass={"build_ext": BuildWithShim})
