"""Makes a synthetic Oxford-IIIT Pet dataset in the official layout (the project's embedded default input).

Usage::

    python -m beam_seg.sample_data --output_dir DIR [--num_images N] [--archives] [--no_faults]

It writes ``images/<Breed>_<n>.jpg``, ``annotations/trimaps/<Breed>_<n>.png`` (1=pet,
2=background, 3=border), ``annotations/list.txt`` with its ``#`` header, ``trainval.txt`` and
``test.txt``, over the 37 breeds (cats capitalised, dogs lower case). Each image shows a pet-like
blob (body, head, ears; colour and shape vary by breed) on a textured background, so a model can
learn it. By default a few files carry the faults the real archives have: CMYK and grayscale
JPEGs, an RGBA PNG and a palette PNG named ``.jpg``, a truncated JPEG, AppleDouble ``._*`` files
and ``.mat`` files. With ``--archives`` it also packs ``images.tar.gz`` and
``annotations.tar.gz`` as the official download does. Output is deterministic for a given seed.

``annotations/beam_seg_sample.json`` (:data:`beam_seg.data.provenance.SAMPLE_MARKER`, packed into
``annotations.tar.gz`` too) says that the data is synthetic and how it was made, so that stage 1's
``stats.json``, and from it the model's ``model_config.json`` and card, never pass it off as the official data.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import sys
import tarfile
from collections.abc import Sequence

import numpy as np
from PIL import Image

from beam_seg import cli
from beam_seg.data import provenance
from beam_seg.pets import BREEDS, CAT_BREEDS

__all__ = ["SampleDataset", "make_sample_data", "run"]

logger = logging.getLogger(__name__)

# Fault kind -> what the pipeline must do with it (documented for tests and users).
FAULT_KINDS: dict[str, str] = {
    "cmyk_jpeg": "converted",
    "grayscale_jpeg": "converted",
    "rgba_png_as_jpg": "converted",
    "palette_png_as_jpg": "converted",
    "truncated_jpeg": "dead-letter: undecodable_image",
}

_LIST_HEADER = """#Image CLASS-ID SPECIES BREED ID
#ID: 1:37 Class ids
#SPECIES: 1:Cat 2:Dog
#BREED ID: 1-12:Cat 1:25:Dog
#All images with 1st letter as captial are cat images
#images with small first letter are dog images
"""


@dataclasses.dataclass(frozen=True)
class SampleDataset:
    """What :func:`make_sample_data` wrote.

    Attributes:
        root: The dataset directory (holding ``images/`` and ``annotations/``).
        trainval: Names listed in ``trainval.txt``.
        test: Names listed in ``test.txt``.
        faults: Image name -> fault kind (a key of :data:`FAULT_KINDS`).
        junk: Paths (relative to root) of files the pipeline must ignore.
        archives: Paths of ``images.tar.gz`` and ``annotations.tar.gz`` when packed.
    """

    root: str
    trainval: tuple[str, ...]
    test: tuple[str, ...]
    faults: dict[str, str]
    junk: tuple[str, ...]
    archives: tuple[str, ...] = ()


def _dilate(mask: np.ndarray) -> np.ndarray:
    """One step of 4-neighbour binary dilation (no wrap-around at the edges)."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def _render(rng: np.random.Generator, breed_id: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws one RGB image and its trimap (1=pet, 2=background, 3=border)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    # Textured background: two random gratings plus noise, in a random dull colour.
    base = rng.uniform(60, 200, size=3)
    texture = 25 * np.sin(xx / rng.uniform(4, 12) + rng.uniform(0, 6)) * np.cos(yy / rng.uniform(4, 12))
    image = base[None, None, :] + texture[..., None] + rng.normal(0, 12, size=(height, width, 3))
    # The pet: an ellipse body, a round head and two triangular-ish ears, sized to the frame.
    scale = min(height, width)
    cy, cx = height * rng.uniform(0.45, 0.6), width * rng.uniform(0.4, 0.6)
    ry, rx = scale * rng.uniform(0.18, 0.28), scale * rng.uniform(0.22, 0.34)
    body = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    hy, hx, hr = cy - ry * 0.9, cx + rx * rng.uniform(-0.6, 0.6), scale * rng.uniform(0.09, 0.14)
    head = (yy - hy) ** 2 + (xx - hx) ** 2 <= hr**2
    ears = np.zeros_like(body)
    for side in (-1, 1):
        apex_y, apex_x = hy - hr * 1.6, hx + side * hr * 0.65
        ears |= (yy >= apex_y) & (yy <= hy - hr * 0.4) & (np.abs(xx - apex_x) <= (yy - apex_y) * 0.55)
    pet = body | head | ears
    # Breed-specific fur colour with a stripe pattern for cats, spots for dogs.
    fur = np.array([(breed_id * 53) % 200 + 30, (breed_id * 97) % 200 + 30, (breed_id * 29) % 200 + 30], np.float32)
    if BREEDS[breed_id] in CAT_BREEDS:
        pattern = 30 * np.sign(np.sin((xx + yy) / 5.0))
    else:
        pattern = 30 * (np.sin(xx / 7.0) * np.sin(yy / 7.0) > 0.5)
    pet_pixels = fur[None, None, :] + pattern[..., None] + rng.normal(0, 8, size=(height, width, 3))
    image = np.where(pet[..., None], pet_pixels, image)
    # Trimap border: a band around the pet outline, like the hand-drawn annotations.
    band = max(2, scale // 80)
    grown, shrunk = pet, pet
    for _ in range(band):
        grown = _dilate(grown)
        shrunk = ~_dilate(~shrunk)
    trimap = np.full((height, width), 2, np.uint8)
    trimap[shrunk] = 1
    trimap[grown & ~shrunk] = 3
    return np.clip(image, 0, 255).astype(np.uint8), trimap


def _encode(pixels: np.ndarray, fault: str | None) -> bytes:
    img = Image.fromarray(pixels)
    buf = io.BytesIO()
    if fault == "cmyk_jpeg":
        img.convert("CMYK").save(buf, format="JPEG", quality=90)
    elif fault == "grayscale_jpeg":
        img.convert("L").save(buf, format="JPEG", quality=90)
    elif fault == "rgba_png_as_jpg":
        rgba = img.convert("RGBA")
        rgba.putalpha(230)
        rgba.save(buf, format="PNG")
    elif fault == "palette_png_as_jpg":
        img.convert("P", palette=Image.Palette.ADAPTIVE).save(buf, format="PNG")
    else:
        img.save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    if fault == "truncated_jpeg":
        data = data[: len(data) // 2]
    return data


def _pack(root: str, top: str, archive: str) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                tar.add(path, arcname=os.path.relpath(path, root), recursive=False)


MAX_SIDE = 4096


def _check_settings(*, num_images: int, min_size: int, max_size: int, test_fraction: float, faults: bool) -> None:
    """Raises ``ValueError`` quoting the first setting :func:`make_sample_data` cannot work with."""
    if num_images < 1:
        raise ValueError(f"--num_images {num_images} must be >= 1")
    if faults and num_images < 2 * len(FAULT_KINDS):
        raise ValueError(
            f"--num_images {num_images} is too small for the {len(FAULT_KINDS)} planted faults; use >= "
            f"{2 * len(FAULT_KINDS)} or pass --no_faults"
        )
    if not 16 <= min_size <= max_size <= MAX_SIDE:
        raise ValueError(
            f"--min_size {min_size} and --max_size {max_size} must satisfy 16 <= min_size <= max_size <= {MAX_SIDE}"
        )
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"--test_fraction {test_fraction} must be between 0 and 1")


def make_sample_data(
    output_dir: str,
    *,
    num_images: int = 200,
    min_size: int = 200,
    max_size: int = 500,
    test_fraction: float = 0.5,
    faults: bool = True,
    archives: bool = False,
    seed: int = 0,
) -> SampleDataset:
    """Writes a synthetic PETS dataset under ``output_dir`` and returns what it wrote.

    Args:
        output_dir: Directory to create ``images/`` and ``annotations/`` in (created if missing).
        num_images: Number of listed images, spread round-robin over the 37 breeds.
        min_size: Smallest image side in pixels.
        max_size: Largest image side in pixels.
        test_fraction: Share of images listed in ``test.txt`` (the rest go to ``trainval.txt``).
        faults: Whether to plant the real archives' faults (see :data:`FAULT_KINDS`) and junk files.
        archives: Whether to also pack ``images.tar.gz`` and ``annotations.tar.gz`` into ``output_dir``.
        seed: Random seed; the same seed gives the same files.

    Returns:
        A :class:`SampleDataset` describing the files.

    Raises:
        ValueError: quoting the first unusable setting (too few images for the faults, sizes out of order or above
            :data:`MAX_SIDE`, a test fraction outside [0, 1], or no trainval image to plant the faults on).
    """
    _check_settings(
        num_images=num_images, min_size=min_size, max_size=max_size, test_fraction=test_fraction, faults=faults
    )
    rng = np.random.default_rng(seed)
    images_dir = os.path.join(output_dir, "images")
    trimaps_dir = os.path.join(output_dir, "annotations", "trimaps")
    os.makedirs(images_dir, exist_ok=True)
    os.makedirs(trimaps_dir, exist_ok=True)

    counters = [0] * len(BREEDS)
    rows: list[tuple[str, int, bool]] = []  # (name, breed id, is_test)
    for i in range(num_images):
        breed_id = i % len(BREEDS)
        counters[breed_id] += 1
        rows.append((f"{BREEDS[breed_id]}_{counters[breed_id]}", breed_id, rng.random() < test_fraction))
    trainval_names = [name for name, _, is_test in rows if not is_test]
    if faults and not trainval_names:
        raise ValueError(
            f"--test_fraction {test_fraction} put all {num_images} images in test.txt, leaving no trainval image to "
            "plant the faults on; lower it or pass --no_faults"
        )
    # Faults go on trainval images spread over the list, so both train and val can see them.
    fault_names = {}
    if faults:
        step = max(1, len(trainval_names) // (len(FAULT_KINDS) + 1))
        fault_names = {trainval_names[(k + 1) * step % len(trainval_names)]: kind for k, kind in enumerate(FAULT_KINDS)}

    for k, (name, breed_id, _) in enumerate(rows):
        height, width = (int(v) for v in rng.integers(min_size, max_size + 1, size=2))
        pixels, trimap = _render(rng, breed_id, height, width)
        with open(os.path.join(images_dir, f"{name}.jpg"), "wb") as f:
            f.write(_encode(pixels, fault_names.get(name)))
        Image.fromarray(trimap).save(os.path.join(trimaps_dir, f"{name}.png"))
        if (k + 1) % 500 == 0:
            logger.info("sample data: %d/%d images written", k + 1, num_images)

    junk: list[str] = []
    if faults:
        for name in sorted(fault_names)[:2]:
            junk.append(f"images/{name}.mat")
            junk.append(f"annotations/trimaps/._{name}.png")
        for rel in junk:
            with open(os.path.join(output_dir, rel), "wb") as f:
                # AppleDouble header magic for ._ files; MATLAB header text for .mat files.
                f.write(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X" if "/._" in rel else b"MATLAB 5.0 MAT-file")

    def listing(names: Sequence[tuple[str, int, bool]]) -> str:
        return "".join(f"{n} {b + 1} {1 if BREEDS[b] in CAT_BREEDS else 2} {b + 1}\n" for n, b, _ in names)

    ann = os.path.join(output_dir, "annotations")
    with open(os.path.join(ann, "list.txt"), "w") as f:
        f.write(_LIST_HEADER + listing(rows))
    with open(os.path.join(ann, "trainval.txt"), "w") as f:
        f.write(listing([r for r in rows if not r[2]]))
    with open(os.path.join(ann, "test.txt"), "w") as f:
        f.write(listing([r for r in rows if r[2]]))
    marker = provenance.sample_marker(
        seed=seed,
        num_images=num_images,
        min_size=min_size,
        max_size=max_size,
        test_fraction=test_fraction,
        faults=faults,
    )
    with open(os.path.join(output_dir, provenance.SAMPLE_MARKER), "wb") as f:
        f.write(marker)

    packed: tuple[str, ...] = ()
    if archives:
        packed = (os.path.join(output_dir, "images.tar.gz"), os.path.join(output_dir, "annotations.tar.gz"))
        _pack(output_dir, "images", packed[0])
        _pack(output_dir, "annotations", packed[1])
    dataset = SampleDataset(
        root=output_dir,
        trainval=tuple(trainval_names),
        test=tuple(n for n, _, is_test in rows if is_test),
        faults=fault_names,
        junk=tuple(junk),
        archives=packed,
    )
    logger.info(
        "sample data: %d images (%d trainval, %d test), %d faults, %d junk files in %s",
        num_images,
        len(dataset.trainval),
        len(dataset.test),
        len(fault_names),
        len(junk),
        output_dir,
    )
    return dataset


PROG = "python -m beam_seg.sample_data"


def _parser() -> cli.StrictArgumentParser:
    parser = cli.StrictArgumentParser(
        prog=PROG,
        description="Write a synthetic Oxford-IIIT Pet dataset in the official layout (deterministic).",
    )
    parser.add_argument("--output_dir", required=True, help="Directory to write images/ and annotations/ into.")
    parser.add_argument("--num_images", type=int, default=200, help="Number of listed images (default: %(default)s).")
    parser.add_argument("--min_size", type=int, default=200, help="Smallest image side, px (default: %(default)s).")
    parser.add_argument("--max_size", type=int, default=500, help="Largest image side, px (default: %(default)s).")
    parser.add_argument(
        "--test_fraction", type=float, default=0.5, help="Share of images in test.txt (default: %(default)s)."
    )
    parser.add_argument("--seed", type=int, default=0, help="Random seed (default: %(default)s).")
    cli.add_logging_flags(parser)
    parser.add_argument(
        "--no_faults",
        dest="faults",
        action="store_false",
        help="Do not plant the real archives' faults (CMYK/grayscale/PNG-as-JPEG images, a truncated file, junk).",
    )
    parser.add_argument(
        "--archives",
        action="store_true",
        help="Also pack images.tar.gz and annotations.tar.gz like the official download.",
    )
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code (0 ok, 2 bad flags)."""
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
        _check_settings(
            num_images=args.num_images,
            min_size=args.min_size,
            max_size=args.max_size,
            test_fraction=args.test_fraction,
            faults=args.faults,
        )
    except (cli.UsageError, ValueError) as e:
        return cli.usage_exit_code(PROG, cli.UsageError(str(e)))
    cli.configure_logging(sys.argv[1:] if argv is None else list(argv))
    try:
        dataset = make_sample_data(
            args.output_dir,
            num_images=args.num_images,
            min_size=args.min_size,
            max_size=args.max_size,
            test_fraction=args.test_fraction,
            faults=args.faults,
            archives=args.archives,
            seed=args.seed,
        )
    except ValueError as e:
        return cli.usage_exit_code(PROG, cli.UsageError(str(e)))
    print(f"sample data written to {dataset.root}")  # CLI summary.
    return 0
