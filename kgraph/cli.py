"""The `kgraph` command. Subcommands grow with the project; today: `info`, `demo`."""
from __future__ import annotations

import argparse
import sys


def _info(args):
    import numpy
    import onnxruntime

    import kgraph
    from kgraph import config

    print(f"kgraph {kgraph.__version__}")
    print(f"numpy {numpy.__version__}, onnxruntime {onnxruntime.__version__} "
          f"(providers: {', '.join(onnxruntime.get_available_providers())})")
    try:
        import tvm  # noqa: F401

        print(f"apache-tvm {tvm.__version__}")
    except ImportError:
        print("apache-tvm: not installed (pip install 'kgraph[tvm]')")
    print(f"config: floatx={config.floatx()}, image_data_format={config.image_data_format()}, "
          f"backend={config.backend()}, home={config.kgraph_home()}")
    return 0


def _demo(args):
    from kgraph.demo import main as demo_main

    return demo_main(["--epochs", str(args.epochs)] + (["--quiet"] if args.quiet else []))


def build_parser():
    import kgraph

    parser = argparse.ArgumentParser(
        prog="kgraph", description="kgraph: the Keras API driven by a graph compiler.")
    parser.add_argument("--version", action="version", version=f"kgraph {kgraph.__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="show versions, executors and configuration").set_defaults(
        fn=_info)
    demo = sub.add_parser("demo", help="train, evaluate, save, reload and predict a model")
    demo.add_argument("--epochs", type=int, default=5)
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(fn=_demo)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "fn", None) is None:
        parser.print_help()
        return 0
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
