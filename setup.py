"""One distribution, one import namespace: compiler/, runtime/ and models/ install as
kgraph.compiler, kgraph.runtime and kgraph.applications (nothing else lands in site-packages)."""
from setuptools import find_packages, setup

ROOTS = {"kgraph": "kgraph", "kgraph.compiler": "compiler", "kgraph.runtime": "runtime",
         "kgraph.applications": "models"}
packages, package_dir = [], {}
for name, path in ROOTS.items():
    package_dir[name] = path
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(path)]
# data files read at run time: the demo's digits, the Keras op table of model configs
setup(packages=packages, package_dir=package_dir,
      package_data={"kgraph.datasets": ["data/*"], "kgraph.keras.saving": ["*.json"]})
