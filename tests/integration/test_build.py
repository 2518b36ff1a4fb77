"""`imod build`: real builds on the busybox image, RUN in real containers of our runtime."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from intermodal.errors import BuildFailed, DockerfileError, ImageNotFound
from tests.support.containers import (
    CGROUP_ROOT,
    clean_containers,  # noqa: F401 - the fixture below
    mounts_under,
)

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"),
              pytest.mark.usefixtures("clean_containers", "no_build_leaks")]


@pytest.fixture
def no_build_leaks(engine_root: Path):
    """After the test: no scratch mount, directory, runtime state or cgroup of a build is left."""
    yield
    leaks = [f"mount {m}" for m in mounts_under(engine_root)]
    leaks += [f"scratch dir {p.name}" for p in (engine_root / "tmp").glob("build-*")]
    leaks += [f"runtime state {p.name}" for p in (engine_root / "run" / "build-runtime").glob("*")
              if not p.name.startswith(".")]  # the runtime's caches (compiled seccomp), not a build's
    leaks += [f"cgroup {p}" for p in CGROUP_ROOT.glob("*/intermodal/build-*")]
    assert not leaks, f"a build left behind: {leaks}"


def write_context(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


@pytest.fixture
def build(engine, busybox_image, tmp_path):
    """build(files, **options) -> (record, output) with a context made of *files*."""
    counter = iter(range(100))

    def run(files: dict[str, str | bytes], context: Path | None = None, **options):
        ctx = context or write_context(tmp_path / f"ctx{next(counter)}", files)
        out = io.StringIO()
        record = engine.images.build(str(ctx), output=out, **options)
        return record, out.getvalue()

    return run


def layer_names(engine, record, index: int) -> list[str]:
    """Entry names of one layer of an image, read from its blob."""
    descriptor = engine.images.store.manifest(record).layers[index]
    with engine.images.store.blobs.open(descriptor.digest) as f, tarfile.open(fileobj=f, mode="r|gz") as tar:
        return [m.name for m in tar]


def test_multi_stage_copy_from_and_both_run_forms(build, imod, engine):
    dockerfile = (
        "FROM busybox AS first\n"
        "RUN echo shell-form > /made && echo printed\n"
        'RUN ["/bin/sh", "-c", "echo exec-form >> /made"]\n'
        "FROM busybox\n"
        "COPY --from=first /made /copied\n"
        'CMD ["cat", "/copied"]\n'
    )
    record, out = build({"Dockerfile": dockerfile}, tags=("multi:1",))
    assert "STEP 1/6: FROM busybox AS first" in out and "STEP 5/6: COPY --from=first /made /copied" in out
    assert "printed\n" in out  # RUN output is shown
    assert out.rstrip().endswith("Successfully tagged docker.io/library/multi:1")
    assert imod("run", "--rm", "multi:1").stdout == b"shell-form\nexec-form\n"
    assert layer_names(engine, record, -1) == ["copied"]
    assert len(record.diff_ids) == 2  # busybox + the COPY: the first stage's layers are not in the result


def test_cached_rebuild_reuses_every_step_and_gives_the_same_id(build, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "Dockerfile": "FROM busybox\nRUN echo one > /one\nCOPY data.txt /data.txt\nENV A=1\nRUN cat /data.txt\n",
        "data.txt": "v1\n",
    })
    first, out1 = build({}, context=ctx, tags=("cached:1",))
    assert "Using cache" not in out1
    second, out2 = build({}, context=ctx, tags=("cached:1",))
    assert out2.count("--> Using cache") == 4  # every step after FROM
    assert "v1" not in out2  # the RUN did not run again
    assert second.id == first.id
    (ctx / "data.txt").write_text("v2\n")
    third, out3 = build({}, context=ctx)
    assert out3.count("--> Using cache") == 1  # the RUN before the COPY; from the COPY on, all is new
    steps = out3.split("STEP ")
    assert "Using cache" in steps[2] and "Using cache" not in steps[3] and "v2\n" in steps[5]
    assert third.id != first.id
    fourth, out4 = build({}, context=ctx, no_cache=True)
    assert "Using cache" not in out4 and "v2\n" in out4
    assert fourth.id != third.id  # new layers and times


def test_target_builds_the_stages_it_needs_only(build):
    dockerfile = (
        "FROM busybox AS base\nRUN echo base > /base\n"
        "FROM busybox AS broken\nRUN exit 9\n"
        "FROM base AS wanted\nRUN cat /base\n"
        "FROM busybox\nRUN exit 1\n"
    )
    record, out = build({"Dockerfile": dockerfile}, target="wanted", tags=("target:1",))
    assert "exit 9" not in out and "exit 1" not in out  # neither skipped stage ran
    assert "STEP 4/4: RUN cat /base\nbase\n" in out
    assert len(record.diff_ids) == 3
    with pytest.raises(Exception, match="target stage 'nope' not found"):
        build({"Dockerfile": dockerfile}, target="nope")


def test_build_args_env_and_history(build, engine):
    dockerfile = (
        "ARG TAG=latest\n"
        "FROM busybox:${TAG}\n"
        "ARG TAG\n"
        "ARG WHO=nobody\n"
        "ARG SHADOWED=arg\n"
        "ENV SHADOWED=env\n"
        'RUN echo "tag=$TAG who=$WHO shadowed=$SHADOWED" > /args\n'
        "ENV FROM_ARG=$WHO\n"
        "LABEL who=$WHO\n"
    )
    dockerfile += "RUN echo proxy=$http_proxy >> /args\n"
    record, out = build({"Dockerfile": dockerfile}, build_args={"WHO": "alice", "UNUSED": "x",
                                                                "http_proxy": "http://127.0.0.1:3128"})
    assert "[Warning] one or more build-args ['UNUSED'] were not consumed" in out
    config = engine.images.config(record)
    assert "FROM_ARG=alice" in config["config"]["Env"]
    assert not any(e.startswith(("WHO=", "TAG=")) for e in config["config"]["Env"])  # args are not kept
    assert config["config"]["Labels"] == {"who": "alice"}
    history = config["history"][1:]  # after busybox's own entry
    assert history[0] == {**history[0], "created_by": "/bin/sh -c #(nop)  ARG TAG", "empty_layer": True}
    assert history[3]["created_by"] == "/bin/sh -c #(nop)  ENV SHADOWED=env"
    run = history[4]
    assert run["created_by"] == ('|2 TAG=latest WHO=alice /bin/sh -c echo "tag=$TAG who=$WHO '
                                 'shadowed=$SHADOWED" > /args')
    assert "empty_layer" not in run
    assert sum(not h.get("empty_layer") for h in config["history"]) == len(record.diff_ids)
    rootfs_file = engine.images.store.layers.layers(record.diff_ids)[-1].path / "args"
    assert rootfs_file.read_text() == "tag=latest who=alice shadowed=env\nproxy=http://127.0.0.1:3128\n"
    assert "3128" not in json.dumps(config["history"])  # a proxy setting is not written into the image


def test_dockerignore_workdir_user_env_and_chown_seen_in_a_run(build, imod):
    files = {
        "Dockerfile": (
            "FROM busybox\n"
            "WORKDIR /app\n"
            "COPY --chown=nobody . ./\n"
            "COPY *.txt /texts/\n"
            "ENV GREETING=hello\n"
            "USER nobody\n"
            "WORKDIR sub\n"
            'CMD ["sh", "-c", "pwd; id -u; echo $GREETING; ls -a /app; ls /texts; stat -c %u /app/a.txt"]\n'
        ),
        ".dockerignore": "secret*\n*.log\n!keep.log\n",
        "a.txt": "a", "b.txt": "b", "secret.txt": "s", "x.log": "x", "keep.log": "k",
    }
    build(files, tags=("effects:1",))
    out = imod("run", "--rm", "effects:1").stdout.decode().split("\n")
    assert out[:3] == ["/app/sub", "65534", "hello"]
    listing = out[3:out.index("a.txt", 3) + 10]
    assert "keep.log" in listing and "x.log" not in listing and "secret.txt" not in listing
    assert ".dockerignore" in listing and "Dockerfile" in listing
    assert out[-4:-1] == ["a.txt", "b.txt", "65534"]  # the glob skips ignored files; --chown applied


def test_whiteouts_and_opaque_directories(build, engine, imod):
    dockerfile = (
        "FROM busybox\n"
        "RUN mkdir -p /d && touch /d/old /keep\n"
        "RUN rm /bin/vi /keep && rm -rf /d && mkdir /d && touch /d/new\n"
    )
    record, _ = build({"Dockerfile": dockerfile}, tags=("wh:1",))
    names = layer_names(engine, record, -1)
    assert "bin/.wh.vi" in names and ".wh.keep" in names and "d/.wh..wh..opq" in names
    out = imod("run", "--rm", "wh:1", "sh", "-c", "ls /d; test -e /bin/vi || echo no-vi; test -e /keep || echo no-keep")
    assert out.stdout == b"new\nno-vi\nno-keep\n"


def test_add_extracts_a_local_tar_and_refuses_urls(build, engine, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("pkg/file")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"inner"))
    record, _ = build({"Dockerfile": "FROM busybox\nADD pkg.tar.gz /opt/\nCOPY pkg.tar.gz /raw/\n",
                       "pkg.tar.gz": buf.getvalue()})
    top = engine.images.store.layers.layers(record.diff_ids)
    assert (top[-2].path / "opt" / "pkg" / "file").read_bytes() == b"inner"  # ADD unpacked it
    assert (top[-1].path / "raw" / "pkg.tar.gz").read_bytes() == buf.getvalue()  # COPY did not
    with pytest.raises(DockerfileError, match=r"Dockerfile:2: ADD: ADD https://example\.com/x: downloading"):
        build({"Dockerfile": "FROM busybox\nADD https://example.com/x /x\n"})


def test_heredocs_and_shell_instruction(build, engine):
    dockerfile = (
        "FROM busybox\n"
        "ENV NAME=world\n"
        "RUN <<EOF\n"
        "echo hello $NAME > /hello\n"
        "echo second line >> /hello\n"
        "EOF\n"
        "COPY <<conf /etc/app.conf\n"
        "name=$NAME\n"
        "conf\n"
        'SHELL ["/bin/sh", "-ec"]\n'
        "RUN echo via-sh-ec >> /hello\n"
        "CMD echo shell form\n"
    )
    record, _ = build({"Dockerfile": dockerfile})
    layers = engine.images.store.layers.layers(record.diff_ids)
    assert (layers[1].path / "hello").read_text() == "hello world\nsecond line\n"
    assert (layers[2].path / "etc" / "app.conf").read_text() == "name=world\n"
    config = engine.images.config(record)
    assert config["config"]["Shell"] == ["/bin/sh", "-ec"]
    assert config["config"]["Cmd"] == ["/bin/sh", "-ec", "echo shell form"]
    assert config["history"][-2]["created_by"] == "/bin/sh -ec echo via-sh-ec >> /hello"


def test_metadata_instructions(build, engine):
    dockerfile = (
        "FROM busybox\n"
        "EXPOSE 80 53/udp\n"
        "VOLUME /data\n"
        "STOPSIGNAL SIGINT\n"
        "HEALTHCHECK --interval=5s CMD true\n"
        "ONBUILD RUN echo later\n"
        'ENTRYPOINT ["/bin/echo"]\n'
        'CMD ["x"]\n'
        "MAINTAINER someone\n"
    )
    record, _ = build({"Dockerfile": dockerfile}, labels={"built.by": "test"})
    config = engine.images.config(record)
    section = config["config"]
    assert section["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert section["Volumes"] == {"/data": {}}
    assert section["StopSignal"] == "SIGINT"
    assert section["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000}
    assert section["OnBuild"] == ["RUN echo later"]
    assert (section["Entrypoint"], section["Cmd"]) == (["/bin/echo"], ["x"])
    assert section["Labels"] == {"built.by": "test"}
    assert config["author"] == "someone"
    assert len(record.diff_ids) == 1 and all(h.get("empty_layer") for h in config["history"][1:])


def test_failing_run_stops_the_build_and_tags_nothing(build, engine):
    dockerfile = "FROM busybox\nRUN echo made > /x\nRUN echo about to fail; exit 3\nRUN echo never\n"
    with pytest.raises(BuildFailed) as err:
        build({"Dockerfile": dockerfile}, tags=("failed:1",))
    assert err.value.code == 3
    assert 'Dockerfile:3: error building at STEP "RUN echo about to fail; exit 3"' in str(err.value)
    assert "exited with status 3" in str(err.value)
    with pytest.raises(ImageNotFound):
        engine.images.get("failed:1")
    assert [r.tags for r in engine.images.list()] == [("docker.io/library/busybox:latest",)]


def test_failing_run_reports_its_output_through_the_cli(imod, busybox_image, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nRUN echo the-output; exit 7\n"})
    proc = imod("build", "-t", "nope:1", str(ctx), check=False)
    assert proc.returncode == 1
    assert b"the-output" in proc.stdout and b"exited with status 7" in proc.stderr
    quiet = imod("build", "-q", str(ctx), check=False)
    assert quiet.stdout == b"" and b"the-output" in quiet.stderr  # -q: the output comes with the error
    assert imod("images", "-q").stdout.count(b"\n") == 1


@pytest.mark.parametrize(("dockerfile", "files", "message"), [
    ("FROM busybox\nFROOM x\n", {}, "Dockerfile:2: unknown instruction: FROOM"),
    ("FROM busybox\nCOPY ../outside /x\n", {}, "Dockerfile:2: COPY: source ../outside is outside the build context"),
    ("FROM busybox\nCOPY missing /x\n", {}, "Dockerfile:2: COPY: missing: not found in the build context"),
    ("FROM busybox\nCOPY a b /x\n", {"a": "1", "b": "2"}, "destination must be a directory"),
    ("FROM busybox\nRUN <<EOF\ntrue\n", {}, "Dockerfile:2: heredoc <<EOF is not terminated"),
    ("FROM busybox\nENV A=${B\n", {}, "Dockerfile:2: ENV: missing '}'"),
    ("FROM busybox\nUSER nobody\nCOPY --chown=ghost a /a\n", {"a": "1"}, "unable to find user ghost"),
    # the registry is local and closed (port 1): nothing leaves this machine
    ("FROM 127.0.0.1:1/nosuch:1\n", {}, "Dockerfile:1: FROM 127.0.0.1:1/nosuch:1: the image is not here"),
])
def test_bad_input(build, dockerfile, files, message):
    with pytest.raises(Exception) as err:
        build({"Dockerfile": dockerfile, **files})
    assert message in str(err.value)


def test_cli_build_tags_args_and_file(imod, busybox_image, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"build.df": "FROM busybox\nARG V\nRUN echo v=$V > /v\n"})
    proc = imod("build", "-f", str(ctx / "build.df"), "-t", "cli:1", "-t", "cli:2", "--build-arg", "V=7",
                "--label", "a=b", str(ctx))
    image_id = proc.stdout.decode().strip().split("\n")[-1]
    assert len(image_id) == 64
    assert imod("run", "--rm", "cli:2", "cat", "/v").stdout == b"v=7\n"
    info = json.loads(imod("image", "inspect", "cli:1").stdout)[0]
    assert info["Id"] == "sha256:" + image_id and info["Config"]["Labels"] == {"a": "b"}
    again = imod("image", "build", "-q", "-f", str(ctx / "build.df"), "--build-arg", "V=7", "--label", "a=b", str(ctx))
    assert again.stdout.decode().strip() == image_id  # quiet prints just the id; all cached, same image


@pytest.fixture
def vfs(monkeypatch):
    monkeypatch.setenv("IMOD_STORAGE_DRIVER", "vfs")


def test_vfs_driver_diffs_by_comparing_trees(vfs, engine, busybox_image, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "Dockerfile": ("FROM busybox\nRUN rm /bin/vi && mkdir /d && echo x > /d/f && echo changed > /etc/passwd\n"
                       "WORKDIR /w\nCOPY c .\nFROM scratch\nCOPY --from=0 /w/c /c\n"),
        "c": "copied\n",
    })
    final = engine.images.build(str(ctx), output=io.StringIO())
    assert engine.images.store.layers.driver.name == "vfs"
    assert layer_names(engine, final, 0) == ["c"]
    record = engine.images.build(str(ctx), output=io.StringIO(), target="0")
    assert layer_names(engine, record, -1) == ["w", "w/c"] and layer_names(engine, record, -2) == ["w"]
    names = layer_names(engine, record, 1)
    assert {"bin/.wh.vi", "d", "d/f", "etc/passwd"} <= set(names)
    assert "bin/sh" not in names and "etc/group" not in names  # unchanged files are not in the layer
    top = engine.images.store.layers.layers(record.diff_ids)[-1].path  # vfs: the whole snapshot
    assert not (top / "bin" / "vi").exists() and (top / "d" / "f").read_text() == "x\n"
    assert (top / "w" / "c").read_text() == "copied\n"


def test_copy_keeps_hard_links_applies_chmod_and_a_scratch_run_fails_clearly(build, engine, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM scratch\nCOPY --chmod=700 f g /x/\n", "f": "data"})
    (ctx / "g").hardlink_to(ctx / "f")
    record, _ = build({}, context=ctx)
    descriptor = engine.images.store.manifest(record).layers[0]
    with engine.images.store.blobs.open(descriptor.digest) as f, tarfile.open(fileobj=f, mode="r|gz") as tar:
        members = {m.name: m for m in tar}
    assert members["x/f"].isreg() and members["x/f"].mode == 0o700 and members["x/f"].size == 4
    assert members["x/g"].islnk() and members["x/g"].linkname == "x/f"
    assert members["x"].isdir() and (members["x"].uid, members["x"].gid) == (0, 0)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY f /f\nRUN true\n")
    with pytest.raises(BuildFailed, match=r'Dockerfile:3: error building at STEP "RUN true": exec /bin/sh'):
        build({}, context=ctx, tags=("scratch:1",))
    assert not engine.images.exists("scratch:1")


def test_copy_from_an_image(build, engine):
    record, _ = build({"Dockerfile": "FROM scratch\nCOPY --from=busybox /bin/busybox /bin/sh /bin/\n"})
    names = layer_names(engine, record, 0)
    assert names == ["bin", "bin/busybox", "bin/sh"]


@pytest.mark.requires("registry")
def test_from_pulls_a_missing_base_and_pull_pulls_again(engine, busybox_image, registry, tmp_path, imod):
    engine.images.push(busybox_image, f"{registry.host}/base/bb:1", tls_verify=False)
    from intermodal.engine import Engine

    other = Engine(root=tmp_path / "other")  # a store without the base image
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"FROM {registry.host}/base/bb:1\nRUN echo ok > /ok\n"})
    record = other.images.build(str(ctx), tls_verify=False, output=io.StringIO())
    assert other.images.exists(f"{registry.host}/base/bb:1") and len(record.diff_ids) == 2
    before = registry.log_size()
    again = other.images.build(str(ctx), tls_verify=False, output=io.StringIO())
    assert registry.requests("GET", "/manifests/", since=before) == 0 and again.id == record.id
    other.images.build(str(ctx), tls_verify=False, pull=True, output=io.StringIO())
    assert registry.requests("GET", "/manifests/", since=before) >= 1


def test_onbuild_triggers_are_recorded_then_run_by_a_child_build(build, engine):
    parent, _ = build({"Dockerfile": "FROM busybox\nONBUILD RUN echo triggered > /t\nONBUILD COPY f /f\n"},
                      tags=("parent:1",))
    assert engine.images.config(parent)["config"]["OnBuild"] == ["RUN echo triggered > /t", "COPY f /f"]
    child, out = build({"Dockerfile": "FROM parent:1\nRUN cat /t /f\n", "f": "from-child-context\n"})
    assert "--> Executing 2 build trigger(s) of parent:1" in out
    assert "triggered\nfrom-child-context\n" in out
    assert "OnBuild" not in engine.images.config(child)["config"]  # triggers are used up
