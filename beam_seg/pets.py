"""The Oxford-IIIT Pet dataset's fixed vocabulary: breeds, species, the mask classes and their colours.

Pure constants, shared by every stage: the official archives (https://www.robots.ox.ac.uk/~vgg/data/pets/) name
images ``<Breed>_<n>.jpg``, capitalise cat breeds and write dog breeds in lower case, and number breeds by their
1-based position in the case-insensitively sorted list below.
"""

from __future__ import annotations

__all__ = ["BREEDS", "CAT_BREEDS", "MASK_CLASSES", "PALETTE", "SPECIES"]

BREEDS: tuple[str, ...] = (
    "Abyssinian",
    "american_bulldog",
    "american_pit_bull_terrier",
    "basset_hound",
    "beagle",
    "Bengal",
    "Birman",
    "Bombay",
    "boxer",
    "British_Shorthair",
    "chihuahua",
    "Egyptian_Mau",
    "english_cocker_spaniel",
    "english_setter",
    "german_shorthaired",
    "great_pyrenees",
    "havanese",
    "japanese_chin",
    "keeshond",
    "leonberger",
    "Maine_Coon",
    "miniature_pinscher",
    "newfoundland",
    "Persian",
    "pomeranian",
    "pug",
    "Ragdoll",
    "Russian_Blue",
    "saint_bernard",
    "samoyed",
    "scottish_terrier",
    "shiba_inu",
    "Siamese",
    "Sphynx",
    "staffordshire_bull_terrier",
    "wheaten_terrier",
    "yorkshire_terrier",
)
CAT_BREEDS: frozenset[str] = frozenset(b for b in BREEDS if b[0].isupper())
SPECIES: tuple[str, ...] = ("cat", "dog")
# Mask class ids as stored in the records and predicted by the model (trimap value - 1).
MASK_CLASSES: tuple[str, ...] = ("pet", "background", "border")
# RGB colour of each class, in MASK_CLASSES order: pet orange, background blue, border yellow.
PALETTE: tuple[tuple[int, int, int], ...] = ((255, 127, 14), (31, 119, 180), (255, 221, 0))
