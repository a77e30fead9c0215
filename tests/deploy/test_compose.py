"""The operator's deployment: deploy/compose.yml, the two Dockerfiles, deploy/.env.example.

No image can be built or run here, so everything is checked statically: the compose file against
the Compose JSON Schema (tests/specs/compose), the Dockerfiles through a small parser of their
instructions, and the three files against each other, pyproject.toml, the CLI and the settings.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

from tests.helpers.dependencies import CONSTRAINTS, locked_versions, pyproject_requirements
from tests.helpers.specs import COMPOSE_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
DOCS = ROOT / "docs" / "deployment.md"
CI_SCRIPT = ROOT / ".ci" / "run"
COMPOSE_SPEC = COMPOSE_SCHEMA

APP_SERVICES = ("api", "worker-io", "worker-gpu", "migrate")
CORE_SERVICES = {*APP_SERVICES, "redis", "postgres"}
PROFILE_SERVICES = {"vllm": "vllm", "flower": "flower"}
LONG_RUNNING = CORE_SERVICES - {"migrate"} | set(PROFILE_SERVICES)
HF_CACHE = "/home/app/.cache/huggingface"
REDIS_URL = "redis://redis:6379/0"
DATABASE_URL = re.compile(
    r"^postgresql\+psycopg://sealion:\$\{POSTGRES_PASSWORD(?::?[?-][^}]*)?\}"
    r"@postgres:5432/sealion$"
)
GPU_PACKAGES = ("torch", "torchvision", "transformers", "accelerate")
WORKER_HEALTHCHECK = "sealion-bot healthcheck"

# Names that hold a secret (MAX_NEW_TOKENS is not one: TOKEN must end the word).
SECRET_NAME = re.compile(
    r"(^|_)(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|ACCESS_KEY|PRIVATE_KEY|BASIC_AUTH|CREDENTIALS?)"
    r"($|_)"
)
# Shapes of real credentials, wherever they would appear.
SECRET_SHAPES = {
    "Telegram bot token": re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}"),
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{20,}"),
    "OpenAI-style key": re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),
    "Meta access token": re.compile(r"\bEAA[A-Za-z0-9]{30,}"),
    "long hex string": re.compile(r"\b[0-9a-fA-F]{32,}\b"),
}
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
WHOLE_INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}$")
URL_PASSWORD = re.compile(r"://[^/\s:@]+:([^@\s]+)@")


# --- loading -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def with_defaults(value: str) -> str:
    """`${VAR:-default}` -> default: what the value is when deploy/.env leaves VAR out."""
    def default(m: re.Match) -> str:
        return (m.group(3) or "") if m.group(2) in ("-", ":-") else m.group(0)

    return INTERPOLATION.sub(default, value)


def env_example() -> dict[str, tuple[str, bool]]:
    """NAME -> (value, commented out) for every `NAME=value` or `# NAME=value` line."""
    found: dict[str, tuple[str, bool]] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            found.setdefault(m.group(2), (m.group(3), bool(m.group(1))))
    return found


def duration_seconds(value: str) -> float:
    """A Compose duration: 30s, 10m, 1m30s, 1h."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def command_of(service: dict) -> list[str]:
    command = service["command"]
    return command if isinstance(command, list) else command.split()


# --- Dockerfile parsing ------------------------------------------------------------------------

@dataclass(frozen=True)
class Instruction:
    name: str
    args: str

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of CMD/ENTRYPOINT/RUN ... ["a", "b"], else None (shell form)."""
        text = self.args
        if self.name == "HEALTHCHECK":
            m = re.search(r"\bCMD\s+(.*)$", text, re.DOTALL)
            if not m:
                return None
            text = m.group(1)
        text = text.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return None
            return value if all(isinstance(v, str) for v in value) else None
        return None


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions with their continuation lines joined and comment lines dropped, as Docker's
    own parser does (default escape character)."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments (and parser directives) and blank lines, also inside continuations
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        line = pending + stripped
        pending = ""
        name, _, args = line.partition(" ")
        instructions.append(Instruction(name.upper(), args.strip()))
    assert not pending, f"{path.name}: the last instruction ends with a line continuation"
    return instructions


INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK",
                "SHELL"}


def dockerfile_of(services: dict, name: str) -> Path:
    build = services[name]["build"]
    return (DEPLOY / build["context"] / build.get("dockerfile", "Dockerfile")).resolve()


@pytest.fixture(scope="module")
def api_dockerfile(services) -> list[Instruction]:
    return parse_dockerfile(dockerfile_of(services, "api"))


@pytest.fixture(scope="module")
def worker_dockerfile(services) -> list[Instruction]:
    return parse_dockerfile(dockerfile_of(services, "worker-gpu"))


@pytest.mark.parametrize("name", ["api", "worker-gpu"])
def test_dockerfiles_parse(services, name):
    """Every line is a known instruction (a forgotten `\\` would start one with `&&`), the
    first is FROM (or ARG), exec forms are valid JSON, and there is one CMD and no ENTRYPOINT."""
    instructions = parse_dockerfile(dockerfile_of(services, name))
    unknown = [i.name for i in instructions if i.name not in INSTRUCTIONS]
    assert not unknown, f"not Dockerfile instructions: {unknown}"
    assert instructions[0].name in ("FROM", "ARG")
    assert len(only(instructions, "FROM")) == 1
    for instruction in instructions:
        if instruction.name == "HEALTHCHECK" and instruction.args == "NONE":
            continue  # no check: nothing to run
        if instruction.name in ("CMD", "HEALTHCHECK") or instruction.args.startswith("["):
            assert instruction.exec_form is not None, instruction
    assert len(only(instructions, "CMD")) == 1 and not only(instructions, "ENTRYPOINT")


def only(instructions: list[Instruction], name: str) -> list[Instruction]:
    return [i for i in instructions if i.name == name]


def copy_sources(instruction: Instruction) -> list[str]:
    words = instruction.exec_form or instruction.args.split()
    words = [w for w in words if not w.startswith("--")]
    assert len(words) >= 2, f"COPY needs a source and a destination: {instruction.args}"
    return words[:-1]


# --- the compose file --------------------------------------------------------------------------

def test_compose_file_validates_against_the_compose_spec(compose):
    from jsonschema import validators

    schema = json.loads(COMPOSE_SPEC.read_text())
    validator = validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


def test_compose_names_exactly_the_services(services):
    assert set(services) == CORE_SERVICES | set(PROFILE_SERVICES)
    for name in CORE_SERVICES:
        assert "profiles" not in services[name], f"{name} must start without a profile"
    for name, profile in PROFILE_SERVICES.items():
        assert services[name].get("profiles") == [profile]


def test_build_contexts_and_dockerfiles_exist(services):
    built = [name for name, s in services.items() if "build" in s]
    assert {"api", "worker-gpu"} <= set(built)
    for name in built:
        build = services[name]["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT, f"{name}: the build context is the repository root"
        assert dockerfile_of(services, name).is_file(), f"{name}: {build['dockerfile']} missing"
    assert services["api"]["build"]["dockerfile"] == "deploy/Dockerfile.api"
    assert services["worker-gpu"]["build"]["dockerfile"] == "deploy/Dockerfile.worker"


def test_our_images_are_built_by_some_service(services):
    """worker-io runs the API image without building it: api (and migrate) build that tag."""
    built_images = {s["image"] for s in services.values() if "build" in s and "image" in s}
    for name in APP_SERVICES:
        service = services[name]
        assert "image" in service, f"{name}: name its image so the others can share it"
        if "build" not in service:
            assert service["image"] in built_images, (
                f"{name}: image {service['image']} is built by no service")
    images = {services[name]["image"] for name in ("api", "worker-io", "migrate")}
    assert len(images) == 1, images


def test_commands(services):
    assert command_of(services["api"]) == ["sealion-bot", "api", "--port", "8080"]
    assert command_of(services["worker-io"]) == [
        "sealion-bot", "worker", "--queues", "io", "--pool", "threads", "--concurrency", "32",
        "--beat"]
    assert command_of(services["worker-gpu"]) == [
        "sealion-bot", "worker", "--queues", "inference", "--pool", "threads",
        "--concurrency", "16"]
    assert command_of(services["migrate"]) == ["sealion-bot", "migrate"]


def assert_the_cli_accepts(argv: list[str], where: str) -> None:
    """`argv` is a `sealion-bot` command line the CLI takes (as it parses it at start)."""
    import click

    from bot.cli.main import main

    assert argv[0] == "sealion-bot", where
    command = main.commands.get(argv[1])
    assert command is not None, f"{where}: `sealion-bot {argv[1]}` is not a command of the CLI"
    try:
        command.make_context(argv[1], list(argv[2:]))
    except click.ClickException as exc:
        pytest.fail(f"{where}: `{' '.join(argv)}` is refused by the CLI: {exc.format_message()}")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_commands_are_accepted_by_the_cli(services, name):
    assert_the_cli_accepts(command_of(services[name]), name)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_read_env_file_and_share_redis_and_postgres(services, name):
    service = services[name]
    assert service["env_file"] in (".env", [".env"])
    environment = service["environment"]
    assert isinstance(environment, dict)
    assert environment["REDIS_URL"] == REDIS_URL
    assert DATABASE_URL.match(environment["DATABASE_URL"]), environment["DATABASE_URL"]


def test_restart_policies(services):
    for name in LONG_RUNNING:
        assert services[name].get("restart") == "unless-stopped", name
    assert services["migrate"]["restart"] == "no"


def test_graceful_stop_periods(services):
    assert duration_seconds(services["api"]["stop_grace_period"]) >= 30
    for name in ("worker-io", "worker-gpu"):
        assert duration_seconds(services[name]["stop_grace_period"]) >= 600, name


def test_logs_rotate(services):
    for name, service in services.items():
        logging = service.get("logging")
        assert logging and logging["driver"] == "json-file", f"{name}: json-file logging"
        assert {"max-size", "max-file"} <= set(logging.get("options", {})), f"{name}: rotation"


def test_dependencies(services):
    for name in ("api", "worker-io", "worker-gpu"):
        depends = services[name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in PROFILE_SERVICES:
        for other in services[name].get("depends_on", {}):
            assert other not in PROFILE_SERVICES, f"{name} must not need another profile"
    for name in CORE_SERVICES:
        for other in services[name].get("depends_on", {}):
            assert other in CORE_SERVICES, f"{name} depends on {other}, which has a profile"


def test_api_is_published_on_8080(services):
    ports = [with_defaults(str(p)) for p in services["api"]["ports"]]
    assert any(p.split(":")[-1] == "8080" and p.split(":")[-2] == "8080" for p in ports), ports


def nvidia_reservation(service: dict) -> dict | None:
    devices = (service.get("deploy", {}).get("resources", {}).get("reservations", {})
               .get("devices", []))
    for device in devices:
        if device.get("driver") == "nvidia" and "gpu" in device.get("capabilities", []):
            return device
    return None


@pytest.mark.parametrize("name", ["worker-gpu", "vllm"])
def test_gpu_services_reserve_an_nvidia_gpu(services, name):
    device = nvidia_reservation(services[name])
    assert device is not None, f"{name}: deploy.resources.reservations.devices, driver nvidia"
    assert device.get("count") == 1 and "device_ids" not in device, device  # one GPU, any


def test_only_gpu_services_reserve_a_gpu(services):
    assert {n for n, s in services.items() if nvidia_reservation(s)} == {"worker-gpu", "vllm"}


def named_volume_mounts(service: dict) -> dict[str, str]:
    """target -> named volume of the service's volume entries (short or long syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            target = rest.split(":")[0]
        else:
            source, target = volume.get("source", ""), volume["target"]
        if source and not source.startswith((".", "/", "~", "$")):
            mounts[target] = source
    return mounts


def test_gpu_worker_keeps_the_hugging_face_cache_on_a_named_volume(compose, services):
    worker = services["worker-gpu"]
    volume = named_volume_mounts(worker).get(HF_CACHE)
    assert volume and volume in compose["volumes"]
    assert worker["environment"]["HF_HOME"] == HF_CACHE


def test_state_lives_on_named_volumes(compose, services):
    redis_volume = named_volume_mounts(services["redis"]).get("/data")
    postgres_volume = named_volume_mounts(services["postgres"]).get("/var/lib/postgresql/data")
    assert redis_volume in compose["volumes"] and postgres_volume in compose["volumes"]
    assert redis_volume != postgres_volume


def test_redis_appends_every_write(services):
    redis = services["redis"]
    assert redis["image"] == "redis:7-alpine"
    command = command_of(redis)
    assert command[command.index("--appendonly") + 1] == "yes"


def test_postgres(services):
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16-alpine"
    password = postgres["environment"]["POSTGRES_PASSWORD"]
    m = WHOLE_INTERPOLATION.match(password)
    assert m and m.group(1) == "POSTGRES_PASSWORD", password
    assert postgres["environment"]["POSTGRES_USER"] == "sealion"
    assert postgres["environment"]["POSTGRES_DB"] == "sealion"


def healthcheck_text(service: dict) -> str:
    healthcheck = service.get("healthcheck")
    assert healthcheck and not healthcheck.get("disable"), "no healthcheck"
    test = healthcheck["test"]
    assert test if isinstance(test, str) else test[0] in ("CMD", "CMD-SHELL")
    return test if isinstance(test, str) else " ".join(test[1:])


def test_healthchecks(services):
    assert "redis-cli ping" in healthcheck_text(services["redis"])
    assert "pg_isready" in healthcheck_text(services["postgres"])
    api = healthcheck_text(services["api"])
    assert "urllib" in api and "/healthz" in api and ":8080" in api
    for name in ("worker-io", "worker-gpu"):
        # workers/healthcheck.py reads the heartbeat key from storage/keys.py.
        assert healthcheck_text(services[name]) == WORKER_HEALTHCHECK, name
    assert "/health" in healthcheck_text(services["vllm"])


def test_vllm_profile(services):
    vllm = services["vllm"]
    assert with_defaults(vllm["image"]).startswith("vllm/vllm-openai")
    command = command_of(vllm)
    model = command[command.index("--model") + 1]
    assert INTERPOLATION.fullmatch(model) and INTERPOLATION.fullmatch(model).group(1) == "MODEL_ID"
    assert command[command.index("--port") + 1] == "8000"
    assert "8000" in [str(p) for p in vllm.get("expose", [])] + [
        str(p).split(":")[-1] for p in vllm.get("ports", [])]
    assert "/root/.cache/huggingface" in named_volume_mounts(vllm)
    documented = ENV_EXAMPLE.read_text()
    assert "OPENAI_BASE_URL=http://vllm:8000/v1" in documented
    assert "MODEL_BACKEND=openai" in documented


def test_flower_profile(services):
    flower = services["flower"]
    assert flower["image"].startswith("mher/flower")
    auth = flower["environment"]["FLOWER_BASIC_AUTH"]
    assert WHOLE_INTERPOLATION.match(auth).group(1) == "FLOWER_BASIC_AUTH"
    assert flower["environment"]["REDIS_URL"] == REDIS_URL
    command = " ".join(command_of(flower))
    assert "--broker" in command and "REDIS_URL" in command
    # Refuses to run without credentials, whatever the default interpolation gave.
    assert 'test -n "$$FLOWER_BASIC_AUTH"' in command
    for port in flower.get("ports", []):
        assert str(port).startswith("127.0.0.1:"), "Flower is published on this host only"


# --- secrets -----------------------------------------------------------------------------------

def walk(value, path=()):
    """(path, key, string) for every string in the document; key is the mapping key above it."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, (*path, str(i)))
    elif value is not None:
        yield path, path[-1] if path else "", str(value)


def secret_problems(where: str, key: str, value: str) -> list[str]:
    problems = []
    if SECRET_NAME.search(key.upper()) and value != "":
        m = WHOLE_INTERPOLATION.match(value)
        if not m:
            problems.append(f"{where}: {key} must be a ${{VAR}} interpolation or empty")
        elif m.group(2) in ("-", ":-", "+", ":+") and m.group(3):
            problems.append(f"{where}: {key} has a literal default")
    for password in URL_PASSWORD.findall(value):
        if not WHOLE_INTERPOLATION.match(password):
            problems.append(f"{where}: a URL holds a literal password")
    for what, shape in SECRET_SHAPES.items():
        if shape.search(value):
            problems.append(f"{where}: looks like a {what}")
    return problems


def test_no_secret_literal_in_compose(compose):
    problems = []
    for path, key, value in walk(compose):
        problems += secret_problems("/".join(path), key, value)
    assert not problems, "\n".join(problems)


def test_no_secret_literal_in_env_example():
    problems = []
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            for what, shape in SECRET_SHAPES.items():
                if shape.search(stripped):
                    problems.append(f".env.example:{number}: looks like a {what}")
            continue
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", stripped)
        assert m, f".env.example:{number}: not a NAME=value line: {line!r}"
        problems += secret_problems(f".env.example:{number}", m.group(1), m.group(2))
    assert not problems, "\n".join(problems)


def test_env_example_names_each_variable_once():
    text = ENV_EXAMPLE.read_text()
    names = [m.group(1) for m in re.finditer(r"^([A-Z][A-Z0-9_]*)=", text, re.MULTILINE)]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


def test_every_compose_variable_is_documented():
    used = {m.group(1) for m in INTERPOLATION.finditer(COMPOSE_FILE.read_text())}
    assert "POSTGRES_PASSWORD" in used
    missing = sorted(used - set(env_example()))
    assert not missing, f"document these in deploy/.env.example: {missing}"


def test_every_setting_is_documented():
    from bot.kernel.settings import Settings

    documented = env_example()
    missing = sorted(n.upper() for n in Settings.model_fields if n.upper() not in documented)
    assert not missing, f"add these Settings to deploy/.env.example: {missing}"


def test_env_example_documents_the_compose_extras():
    documented = env_example()
    for name in ("POSTGRES_PASSWORD", "FLOWER_BASIC_AUTH", "MODEL_BACKEND", "OPENAI_BASE_URL",
                 "OPENAI_API_KEY", "HF_TOKEN", "REDIS_URL"):
        assert name in documented, name
    assert "DATABASE_URL" in ENV_EXAMPLE.read_text()


# --- the images ----------------------------------------------------------------------------------

def test_base_dependencies_have_no_model_stack():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set(dependency_names(project["dependencies"]))
    assert not names & set(GPU_PACKAGES), names & set(GPU_PACKAGES)
    gpu = set(dependency_names(project["optional-dependencies"]["gpu"]))
    assert {"torch", "transformers"} <= gpu


def test_api_image_installs_no_model_stack(api_dockerfile):
    (base,) = only(api_dockerfile, "FROM")
    assert base.args.split()[-1] == "python:3.11-slim"
    runs = [i.args for i in only(api_dockerfile, "RUN")]
    assert any(re.search(r"\bpip install (?:[^&|;]*\s)?\.(\s|$)", r) for r in runs), runs
    for run in runs:
        assert not re.search(r"torch|transformers|\[gpu\]|optional-dependencies|/whl/cu", run), run


def test_worker_image_installs_torch_for_cuda(worker_dockerfile):
    (base,) = only(worker_dockerfile, "FROM")
    image = base.args.split()[-1]
    assert image.startswith("nvidia/cuda:") and "runtime" in image, image
    runs = " ".join(i.args for i in only(worker_dockerfile, "RUN"))
    assert re.search(r"python3\.1[12]\b", runs), "installs Python 3.11 or 3.12"
    assert '".[gpu]"' in runs
    args = dict(i.args.partition("=")[::2] for i in only(worker_dockerfile, "ARG"))
    index = args.get("TORCH_INDEX_URL", runs)
    assert re.search(r"download\.pytorch\.org/whl/cu\d+", index), "torch from the CUDA wheel index"
    assert "--index-url" in runs


# --- the lock: deploy/constraints.txt ---------------------------------------------------------

def constraint_files(run: str, lock_name: str) -> set[str]:
    """The files a RUN may hand to `pip install -c`: the lock as the image names it, and files
    the same RUN derives from it (`grep ... constraints.txt > /tmp/x.txt`)."""
    files = {lock_name}
    for command in re.split(r"&&|;", run):
        source, redirect, target = command.partition(">")
        if redirect and lock_name in source.split():
            files.add(target.strip().split()[0])
    return files


@pytest.mark.parametrize("image", ["api", "worker"])
def test_images_install_every_package_at_its_locked_version(image, api_dockerfile,
                                                            worker_dockerfile):
    """Every `pip install` of an image is constrained by deploy/constraints.txt, copied in before
    it: an image builds the versions the lock names, not whatever PyPI serves that day."""
    instructions = api_dockerfile if image == "api" else worker_dockerfile
    copied = [(n, ins) for n, ins in enumerate(instructions) if ins.name == "COPY"
              and "deploy/constraints.txt" in copy_sources(ins)]
    assert copied, "COPY deploy/constraints.txt into the image"
    copy_at, copy = copied[0]
    destination = (copy.exec_form or copy.args.split())[-1]
    lock_name = ("constraints.txt" if destination in (".", "./") or destination.endswith("/")
                 else destination)
    installs = 0
    for n, instruction in enumerate(instructions):
        if instruction.name != "RUN" or "pip install" not in instruction.args:
            continue
        assert n > copy_at, f"pip install before the lock is copied: {instruction.args}"
        allowed = constraint_files(instruction.args, lock_name)
        for command in re.split(r"&&|;", instruction.args):
            if not re.search(r"\bpip install\b", command):
                continue
            installs += 1
            given = re.findall(r"(?:^|\s)(?:-c|--constraint)[\s=]+(\S+)", command)
            assert given and set(given) <= allowed, (
                f"{image}: `{command.strip()}` must install with -c {lock_name}")
    assert installs >= 2


def test_the_lock_pins_every_dependency_within_pyproject_floors():
    """deploy/constraints.txt satisfies pyproject.toml: every requirement (build, base, extras)
    has a pin, and the pin is inside the requirement's range (a raised floor needs a new lock:
    deploy/lock.sh)."""
    pins = locked_versions()
    problems = []
    for name, requirement in pyproject_requirements().items():
        if name not in pins:
            problems.append(f"{requirement}: no pin")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement}: the lock pins {pins[name]}")
    assert not problems, "run deploy/lock.sh:\n" + "\n".join(problems)


def test_the_lock_pins_the_torch_the_tests_run():
    """The images get the torch and torchvision that CI installs and the suite passes with."""
    pins = locked_versions()
    tested = dict(re.findall(r"\b(torch|torchvision)==(\S+)", CI_SCRIPT.read_text()))
    assert set(tested) == {"torch", "torchvision"}, tested
    for name, version in tested.items():
        assert pins[name] == Version(version), (name, pins.get(name), version)
    # torch's CUDA runtime is the torch build's own (PyPI's is not the worker image's).
    assert not [name for name in pins if name.startswith(("nvidia-", "cuda-"))
                or name == "triton"]


def test_the_lock_says_how_it_is_made():
    header = CONSTRAINTS.read_text().split("\n\n")[0]
    assert "deploy/lock.sh" in header
    assert (DEPLOY / "lock.sh").stat().st_mode & 0o111, "deploy/lock.sh is executable"
    assert "deploy/lock.sh" in DOCS.read_text(), "docs/deployment.md says how to update the lock"


@pytest.mark.parametrize("image", ["api", "worker"])
def test_images_run_as_app_with_a_healthcheck(image, api_dockerfile, worker_dockerfile):
    instructions = api_dockerfile if image == "api" else worker_dockerfile
    users = only(instructions, "USER")
    assert users, "a USER instruction"
    user = users[-1].args.split(":")[0]
    assert user == "app" and user not in ("root", "0")
    runs = " ".join(i.args for i in only(instructions, "RUN"))
    assert "useradd" in runs and re.search(r"\bapp\b", runs)
    (healthcheck,) = only(instructions, "HEALTHCHECK")
    assert healthcheck.args.upper() != "NONE" and healthcheck.exec_form, healthcheck.args
    command = only(instructions, "CMD")[-1].exec_form
    assert command and command[0] == "sealion-bot"
    if image == "api":
        assert command[1] == "api"
        assert "/healthz" in " ".join(healthcheck.exec_form)
        exposed = " ".join(i.args for i in only(instructions, "EXPOSE")).split()
        assert exposed == ["8080"], exposed
    else:
        assert command[1] == "worker"
        assert " ".join(healthcheck.exec_form) == WORKER_HEALTHCHECK


def dependency_names(requirements: list[str]) -> dict[str, str]:
    """name -> the whole requirement (extras included) of a dependency list."""
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower(): r for r in requirements}


def test_the_api_image_can_run_migrate_against_postgresql(services, api_dockerfile):
    """migrate (and the log writers) run on the API image, whose only packages are pyproject's
    base dependencies, against the postgresql+psycopg URL compose.yml sets."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = dependency_names(project["dependencies"])
    missing = [n for n in ("sqlalchemy", "alembic", "psycopg") if n not in base]
    assert not missing, (f"pyproject.toml's base dependencies lack {missing}: the API image "
                         "(pip install .) could not run `sealion-bot migrate` on PostgreSQL")
    runs = " ".join(i.args for i in only(api_dockerfile, "RUN"))
    if "[binary]" not in base["psycopg"]:
        assert "libpq" in runs, "psycopg without its [binary] extra needs libpq in the image"


RUNTIME_IRRELEVANT_SUFFIXES = {".py", ".pyc", ".pyo", ".ini", ".mako", ".md"}


def test_pip_install_ships_the_packages_data_files():
    """The images install the project with `pip install .`, not in editable mode: a file inside
    a package that is not Python (an admin template...) is there only if pyproject.toml says so."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = setuptools["packages"]["find"]["include"]
    package_data: dict[str, list[str]] = setuptools.get("package-data", {})
    shipped: set[Path] = set()
    for package, patterns in package_data.items():
        roots = ([p for p in ROOT.iterdir() if p.is_dir()] if package in ("*", "")
                 else [ROOT / package.replace(".", "/")])
        for root in roots:
            for pattern in patterns:
                shipped |= set(root.glob(pattern))
    manifest = ROOT / "MANIFEST.in"
    if manifest.is_file() and setuptools.get("include-package-data", True):
        for line in manifest.read_text().splitlines():
            words = line.split()
            if words[:1] == ["recursive-include"] and len(words) >= 3:
                for pattern in words[2:]:
                    shipped |= set((ROOT / words[1]).rglob(pattern))
            elif words[:1] == ["include"]:
                for pattern in words[1:]:
                    shipped |= set(ROOT.glob(pattern))
    needed = [
        f for top in ROOT.iterdir()
        if top.is_dir() and any(fnmatch.fnmatchcase(top.name, p) for p in include)
        for f in top.rglob("*")
        if f.is_file() and "__pycache__" not in f.parts
        and f.suffix not in RUNTIME_IRRELEVANT_SUFFIXES
    ]
    missing = sorted(str(f.relative_to(ROOT)) for f in needed if f not in shipped)
    assert not missing, ("pyproject.toml needs [tool.setuptools.package-data] for these, or the "
                         f"images (pip install .) lack them: {missing}")


def dockerignored(path: str) -> bool:
    """Whether .dockerignore leaves `path` (relative to the context) out of the build context."""
    ignored = False
    for raw in DOCKERIGNORE.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        candidates = [path]
        parts = path.split("/")
        candidates += ["/".join(parts[:i]) for i in range(1, len(parts))]  # a parent folder
        if pattern.startswith("**/"):
            pattern = pattern[3:]
            candidates += ["/".join(parts[i:j]) for i in range(len(parts))
                           for j in range(i + 1, len(parts) + 1)]
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            ignored = not negate
    return ignored


@pytest.mark.parametrize("image", ["api", "worker"])
def test_images_copy_what_exists_in_a_cache_friendly_order(image, api_dockerfile,
                                                           worker_dockerfile):
    instructions = api_dockerfile if image == "api" else worker_dockerfile
    copies = only(instructions, "COPY")
    copied: list[str] = []
    for copy in copies:
        assert "--from" not in copy.args
        for source in copy_sources(copy):
            source = source.rstrip("/")
            if any(ch in source for ch in "*?["):
                if len(copy_sources(copy)) == 1:  # a COPY of several may match nothing of one
                    assert list(ROOT.glob(source)), source
                continue
            assert (ROOT / source).exists(), f"COPY {source}: not in the build context"
            assert not dockerignored(source), f"COPY {source}: excluded by .dockerignore"
            copied.append(source)
    # Every package pyproject.toml installs is copied.
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]["find"]["include"]
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").is_file()
                and any(fnmatch.fnmatchcase(p.name, pattern) for pattern in include)}
    assert packages and packages <= set(copied), f"COPY these packages: {packages - set(copied)}"
    assert "pyproject.toml" in copied and "README.md" in copied
    # pyproject.toml first, dependencies installed, then the code: a code edit keeps that layer.
    position = {name: n for n, ins in enumerate(instructions) if ins.name == "COPY"
                for name in copy_sources(ins)}
    first_code = min(position[p] for p in packages)
    assert position["pyproject.toml"] < first_code
    assert any(ins.name == "RUN" and "pip install" in ins.args
               for ins in instructions[position["pyproject.toml"]:first_code])


def test_dockerignore_keeps_secrets_and_clutter_out():
    for path in (".git", ".env", "deploy/.env", "bot/__pycache__", "sealion_bot.egg-info",
                 ".pytest_cache", ".hypothesis", ".sealion", "tests"):
        assert dockerignored(path), f".dockerignore should exclude {path}"
    for path in ("pyproject.toml", "README.md", "bot", "workers", "adapters", "storage"):
        assert not dockerignored(path), f".dockerignore must keep {path}"


# --- the docs ----------------------------------------------------------------------------------

def test_deployment_guide_covers_the_operator_steps():
    text = DOCS.read_text()
    for needle in ("cp deploy/.env.example deploy/.env",
                   "docker compose -f deploy/compose.yml up -d",
                   "NVIDIA Container Toolkit", "set-webhook telegram", "/webhooks/line",
                   "/webhooks/whatsapp", "run --rm migrate", "pg_dump", "appendonly",
                   "--profile vllm", "--profile flower", "/healthz", "/readyz", "/metrics"):
        assert needle in text, f"docs/deployment.md should cover {needle!r}"


# --- the real Compose parser, where there is one -----------------------------------------------

def test_docker_compose_config_accepts_the_file(tmp_path):
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on this machine")
    probe = subprocess.run([docker, "compose", "version"], check=False, capture_output=True,
                           text=True)
    if probe.returncode != 0:
        pytest.skip("the docker client has no compose plugin here: "
                    + (probe.stderr or probe.stdout).strip().splitlines()[0])
    # A project folder of its own with a filled-in .env, so no deploy/.env is needed or touched.
    env = (ENV_EXAMPLE.read_text()
           .replace("\nPOSTGRES_PASSWORD=\n", "\nPOSTGRES_PASSWORD=examplepassword\n")
           .replace("\nFLOWER_BASIC_AUTH=\n", "\nFLOWER_BASIC_AUTH=admin:example\n"))
    (tmp_path / ".env").write_text(env)
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "--project-directory", str(tmp_path),
         "--profile", "vllm", "--profile", "flower", "config", "-q"],
        check=False, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
