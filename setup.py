from Cython.Build import cythonize
from setuptools import Extension, setup

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

setup(ext_modules=cythonize([native], language_level=3, quiet=True))
