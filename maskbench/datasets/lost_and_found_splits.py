"""The official Lost & Found selections (SegmentMeIfYouCan/road-anomaly-benchmark ``datasets/tracks.py``
``DatasetLostAndFound``, ``datasets/tracks_extra.py`` ``LostAndFoundAnomaly`` and ``FishyscapesLAFSubset``).

``exclude_frame_indices`` index the id-sorted full split (so those subsets need the complete split);
``exclude_prefix`` drops ids by prefix; the Fishyscapes subsets are explicit Lost & Found id lists drawn from
both splits (``FishyLAFObstacle-val``: the 100 Fishyscapes L&F validation ids minus the 2 whose LAF labels are
invalid; ``FishyLAFObstacle-test``: the ids of the file upstream reads from ``$FISHY_LAF_ID_FILE``, keys
``test`` and ``testInvalid``, which is not published).
"""

from dataclasses import dataclass

TRACKS = "road_anomaly_benchmark/datasets/tracks.py"
TRACKS_EXTRA = "road_anomaly_benchmark/datasets/tracks_extra.py"

INVALID_TEST_INDICES = (17, 37, 55, 72, 91, 110, 129, 153, 174, 197, 218, 353, 490, 618, 686, 792, 793)
INVALID_TRAIN_INDICES = (44, 67, 88, 109, 131, 614)
NO_KNOWN_PREFIXES = (
    "15_Rechbergstr_Deckenpfronn",  # children
    "01_Hanns_Klemm_Str_45_000006",  # bicycles
    "01_Hanns_Klemm_Str_45_000007",
    "10_Schlossberg_9_000004",
)

_FISHY_VAL = {  # scene -> <seq>_<frame> of FRAME_IDS_SETS['Anomaly-val']
    "01_Hanns_Klemm_Str_45": (
        "000000_000080", "000000_000140", "000000_000200", "000000_000230", "000000_000260", "000001_000060",
        "000001_000120", "000001_000180", "000001_000210", "000001_000240", "000002_000070", "000002_000130",
        "000002_000190", "000002_000220", "000003_000030", "000003_000090", "000003_000150", "000003_000180",
        "000003_000210", "000004_000120", "000004_000180", "000004_000210", "000005_000080", "000005_000140",
        "000005_000200", "000005_000230", "000008_000060", "000008_000120", "000008_000180", "000008_000240",
        "000009_000090", "000009_000150", "000009_000210", "000010_000050", "000010_000110", "000010_000170",
        "000010_000200", "000011_000050", "000011_000110", "000011_000170", "000011_000200", "000011_000230",
        "000011_000260", "000012_000160", "000012_000220", "000012_000250", "000012_000280",
    ),
    "04_Maurener_Weg_8": (
        "000000_000030", "000000_000090", "000000_000150", "000000_000180", "000001_000030", "000001_000090",
        "000001_000150", "000001_000180", "000001_000210", "000002_000060", "000002_000120", "000002_000150",
        "000003_000030", "000003_000090", "000003_000120", "000004_000020", "000004_000080", "000004_000140",
        "000004_000170", "000004_000200", "000005_000050", "000005_000110", "000005_000170", "000005_000200",
        "000006_000040", "000006_000100", "000006_000130", "000007_000020", "000007_000080", "000007_000140",
        "000007_000170", "000008_000040", "000008_000100", "000008_000130", "000008_000160", "000008_000190",
    ),
    "13_Elly_Beinhorn_Str": (
        "000000_000050", "000000_000110", "000000_000170", "000000_000230", "000000_000260", "000000_000290",
        "000001_000080", "000001_000140", "000001_000200", "000001_000230", "000002_000030", "000002_000090",
        "000002_000120", "000003_000080", "000003_000140", "000003_000200", "000003_000260",
    ),
}
FISHY_LAF_VAL = tuple(sorted(f"{scene}_{frame}" for scene, frames in _FISHY_VAL.items() for frame in frames))
FISHY_LAF_INVALID = ("01_Hanns_Klemm_Str_45_000001_000240", "01_Hanns_Klemm_Str_45_000005_000230")  # LAF labels
FISHY_OBSTACLE_VAL = tuple(fid for fid in FISHY_LAF_VAL if fid not in FISHY_LAF_INVALID)


@dataclass(frozen=True)
class Subset:
    """A Lost & Found selection: the official name, count, the LAF split folders it reads, and how it selects."""

    official: str
    count: int
    splits: tuple
    source: str
    exclude_indices: tuple = ()
    exclude_prefix: tuple = ()
    ids: tuple | None = None  # explicit list; "file" = read from the ids= file
    roi: bool = False  # LostAndFoundAnomaly: ROI image instead of the drivable space


SUBSETS = {
    "test": Subset("LostAndFound-test", 1203, ("test",), TRACKS),
    "testValid": Subset("LostAndFound-testValid", 1186, ("test",), TRACKS, exclude_indices=INVALID_TEST_INDICES),
    "testNoKnown": Subset("LostAndFound-testNoKnown", 1043, ("test",), TRACKS, exclude_indices=INVALID_TEST_INDICES,
                          exclude_prefix=NO_KNOWN_PREFIXES),
    "train": Subset("LostAndFound-train", 1036, ("train",), TRACKS),
    "trainValid": Subset("LostAndFound-trainValid", 1030, ("train",), TRACKS, exclude_indices=INVALID_TRAIN_INDICES),
    "anomalyTest": Subset("LostAndFound-anomalyTest", 1203, ("test",), f"{TRACKS_EXTRA} LostAndFoundAnomaly", roi=True),
    "anomalyTrain": Subset("LostAndFound-anomalyTrain", 1036, ("train",), f"{TRACKS_EXTRA} LostAndFoundAnomaly",
                           roi=True),
    "fishyObstacleVal": Subset("FishyLAFObstacle-val", 98, ("train", "test"), f"{TRACKS_EXTRA} FishyscapesLAFSubset",
                               ids=FISHY_OBSTACLE_VAL),
    "fishyObstacleTest": Subset("FishyLAFObstacle-test", 268, ("train", "test"),
                                f"{TRACKS_EXTRA} FishyscapesLAFSubset (ids from the unpublished FishyLAF-ids.json)",
                                ids="file"),
}
