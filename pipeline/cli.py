"""The ``interceptor`` command: broker, topics, worker, keys, demo, schemas, bench, simulate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import InterceptorError
from pipeline.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    return Settings().with_overrides(
        bootstrap_servers=getattr(args, "bootstrap", None),
        metrics_port=getattr(args, "metrics_port", None),
        data_dir=getattr(args, "data_dir", None),
        consumer_group=getattr(args, "group", None),
        replication_factor=getattr(args, "replication_factor", None),
        insecure_dev_keys=getattr(args, "insecure_dev_keys", None) or None,
    )


def _tool_settings(args: argparse.Namespace) -> Settings:
    """The demo, the bench and the simulator sign with the development key unless a real one is configured."""
    return _settings(args).with_overrides(insecure_dev_keys=True)


def _require_bootstrap(settings: Settings) -> str:
    if not settings.bootstrap_servers:
        raise InterceptorError(
            "no broker given: pass --bootstrap HOST:PORT or set KAFKA_BOOTSTRAP_SERVERS "
            "(`interceptor broker` starts an embedded one)"
        )
    return settings.bootstrap_servers


def cmd_broker(args: argparse.Namespace) -> None:
    from pipeline.broker import EmbeddedBroker, create_topics
    from pipeline.topics import catalogue

    with EmbeddedBroker(args.host, args.port) as broker:
        settings = Settings()
        asyncio.run(create_topics(broker.bootstrap, catalogue(settings.trail_partitions), settings.topic_prefix))
        print(f"bootstrap: {broker.bootstrap}", flush=True)
        print("embedded Tansu broker (in-memory: data is lost when it stops); Ctrl-C to stop", flush=True)
        _wait_for_signal()


def cmd_topics_create(args: argparse.Namespace) -> None:
    from pipeline.broker import create_topics
    from pipeline.kafka import KafkaConnection
    from pipeline.topics import catalogue

    settings = _settings(args)
    bootstrap = _require_bootstrap(settings)
    kafka = KafkaConnection.of(settings, bootstrap)
    topics = catalogue(settings.trail_partitions)
    created = asyncio.run(create_topics(kafka, topics, settings.topic_prefix, settings.replication_factor))
    print(f"created: {', '.join(created) or 'nothing, all topics exist'}")


def cmd_topics_table(args: argparse.Namespace) -> None:
    from pipeline.topics import topic_table_markdown

    print(topic_table_markdown(), end="")


def cmd_worker(args: argparse.Namespace) -> None:
    from pipeline.app import create_worker
    from pipeline.broker import create_topics
    from pipeline.kafka import KafkaConnection
    from pipeline.keys import load_signer, require_real_keys
    from pipeline.topics import catalogue

    settings = _settings(args)
    require_real_keys(settings)  # before connecting anywhere: a key problem is said at once, not after a timeout
    load_signer(settings)
    bootstrap = _require_bootstrap(settings)
    asyncio.run(create_topics(KafkaConnection.of(settings, bootstrap), catalogue(settings.trail_partitions),
                              settings.topic_prefix, settings.replication_factor))  # fmt: skip
    create_worker(settings, bootstrap, loglevel=args.loglevel).execute_from_commandline()


def cmd_demo(args: argparse.Namespace) -> None:
    from pipeline.demo import run_demo

    run_demo(_tool_settings(args), duration_s=args.duration)


def cmd_keys(args: argparse.Namespace) -> None:
    from pipeline.keys import JWKS_FILE, generate_key, retire_key

    directory: Path = args.directory
    if args.retire:
        retire_key(directory, args.retire)
        print(f"retired {args.retire}; publish {directory / JWKS_FILE} again")
        return
    kid = generate_key(directory)
    print(f"new signing key {kid} in {directory} (it signs from the next worker start)")
    print(f"publish {directory / JWKS_FILE}: institutions verify actions with it")
    print(f"set INTERCEPTOR_SIGNING_KEY_DIR={directory} for the worker")


def cmd_schemas_export(args: argparse.Namespace) -> None:
    from pipeline.topics import wire_models
    from schemas.export import export_json_schemas

    for path in export_json_schemas(Path(args.directory), wire_models()):
        print(path)


def cmd_bench(args: argparse.Namespace) -> None:
    from pipeline.bench import run_bench

    history = tuple(int(size) for size in args.history.split(","))
    run_bench(_tool_settings(args), transactions=args.transactions, history=history)


def cmd_simulate(args: argparse.Namespace) -> None:
    import json

    from connectors.scenario import load_scenario, scenario_schema
    from pipeline.simulate import run_simulation

    if args.scenario_schema:
        print(json.dumps(scenario_schema(), indent=2))
        return
    if args.out is None:
        raise InterceptorError("simulate: --out DIR is required")
    scenario = load_scenario(args.scenario)
    if args.seed is not None:
        scenario = scenario.model_copy(update={"seed": args.seed})
    run_simulation(_tool_settings(args), scenario, args.out)


def _wait_for_signal() -> None:
    stop = asyncio.Event()

    async def wait() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    asyncio.run(wait())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="interceptor", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def bootstrap_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS)"
        )

    def replication_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--replication-factor",
            type=int,
            metavar="N",
            help="copies of every topic it creates (default: $INTERCEPTOR_REPLICATION_FACTOR, else 1)",
        )

    broker = commands.add_parser("broker", help="run the embedded Tansu broker in the foreground")
    broker.add_argument("--host", default="127.0.0.1")
    broker.add_argument("--port", type=int, default=Settings().embedded_broker_port, help="0 = any free port")
    broker.set_defaults(run=cmd_broker)

    topics = commands.add_parser("topics", help="manage the topic catalogue").add_subparsers(
        dest="action", required=True
    )
    create = topics.add_parser("create", help="create every catalogue topic that is missing")
    bootstrap_flag(create)
    replication_flag(create)
    create.set_defaults(run=cmd_topics_create)
    topics.add_parser("table", help="print the catalogue as a Markdown table").set_defaults(run=cmd_topics_table)

    worker = commands.add_parser("worker", help="run the pipeline worker")
    bootstrap_flag(worker)
    replication_flag(worker)
    worker.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    worker.add_argument("--data-dir", type=Path, help="local state directory (default .interceptor)")
    worker.add_argument("--group", help="consumer group (default interceptor)")
    worker.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    worker.add_argument(
        "--insecure-dev-keys",
        action="store_true",
        help="sign with the public development key when no key is configured (never in production)",
    )
    worker.set_defaults(run=cmd_worker)

    demo = commands.add_parser("demo", help="broker + worker + synthetic scam scenario, printing freeze actions")
    bootstrap_flag(demo)
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    demo.add_argument("--metrics-port", type=int, help="serve the worker's Prometheus metrics on this port")
    demo.set_defaults(run=cmd_demo)

    keys = commands.add_parser(
        "keys", help="make a war-room signing key (Ed25519) in DIR and list it in DIR/jwks.json; again to rotate"
    )
    keys.add_argument("directory", metavar="DIR", type=Path)
    keys.add_argument("--retire", metavar="KID", help="drop an old key from jwks.json and delete it")
    keys.set_defaults(run=cmd_keys)

    schemas = commands.add_parser("schemas", help="the wire contract").add_subparsers(dest="action", required=True)
    export = schemas.add_parser("export", help="write a JSON Schema for every topic into DIR")
    export.add_argument("directory", metavar="DIR")
    export.set_defaults(run=cmd_schemas_export)

    bench = commands.add_parser("bench", help="throughput and latency figures on the embedded broker")
    bootstrap_flag(bench)
    bench.add_argument("--transactions", type=int, default=200_000, help="bank transactions per throughput run")
    bench.add_argument(
        "--history", default="1000000,3000000", help="two history sizes for the memory and restart figures"
    )
    bench.set_defaults(run=cmd_bench)

    simulate = commands.add_parser(
        "simulate", help="a seeded scam world through the broker and worker, scored against its ground truth"
    )
    bootstrap_flag(simulate)
    simulate.add_argument("--out", type=Path, metavar="DIR", help="where summary.json, table.txt and the plot go")
    simulate.add_argument("--seed", type=int, help="the world's seed (default: the scenario's)")
    simulate.add_argument(
        "--scenario",
        type=Path,
        metavar="FILE",
        help="YAML or JSON scenario (default: connectors/scenarios/thailand.yaml)",
    )
    simulate.add_argument("--scenario-schema", action="store_true", help="print the scenario file's JSON Schema")
    simulate.set_defaults(run=cmd_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The demo and the bench print their own story; library chatter would drown it.
    quiet = args.command in ("demo", "bench", "simulate")
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        args.run(args)
    except InterceptorError as error:
        print(f"interceptor: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
