"""One distribution, one import namespace: compiler/, runtime/ and models/ install as
kgraph.compiler, kgraph.runtime and kgraph.applications (nothing else lands in site-packages).

kgraph's onnxruntime operators (runtime/native/ortops.cc) build as an optional extension: a
shared library onnxruntime loads (runtime/native_ops.py), never imported by Python. Without a
C++ compiler the install still succeeds and the graphs use standard ONNX instead."""
from setuptools import Extension, find_packages, setup

ROOTS = {"kgraph": "kgraph", "kgraph.compiler": "compiler", "kgraph.runtime": "runtime",
         "kgraph.applications": "models"}
packages, package_dir = [], {}
for name, path in ROOTS.items():
    package_dir[name] = path
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(path)]
# data files read at run time: the demo's digits, the Keras op table of model configs
ortops = Extension(
    "kgraph.runtime._ortops",
    sources=["runtime/native/ortops.cc", "runtime/native/lstm.cc", "runtime/native/conv.cc"],
    include_dirs=["third_party/onnxruntime"], language="c++", optional=True,
    # -fno-trapping-math lets the branch-free loops vectorise (no trap handlers are installed),
    # -fno-math-errno the ones with a square root (errno is never read; the values are the
    # same); no FMA contraction: AdamUpdate's results must equal the separate ops' bit for bit
    extra_compile_args=["-O3", "-std=c++17", "-fno-trapping-math", "-fno-math-errno", "-ffp-contract=off",
                        "-fvisibility=hidden", "-Wno-psabi"])
setup(packages=packages, package_dir=package_dir, ext_modules=[ortops],
      package_data={"kgraph.datasets": ["data/*"], "kgraph.keras.saving": ["*.json"]})
