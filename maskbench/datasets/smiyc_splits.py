"""The official SegmentMeIfYouCan frame selections (SegmentMeIfYouCan/road-anomaly-benchmark
``road_anomaly_benchmark/datasets/tracks.py`` and ``tracks_extra.py``), as data: names, rules, lists, counts.

RoadAnomaly21 (``dataset_AnomalyTrack``): ``AnomalyTrack-all`` is every image (110); the test frames and the
object groups of ``RoadAnomalyByClass`` are explicit frame lists; validation frames are ``validation<NNNN>``.
RoadObstacle21 (``dataset_ObstacleTrack``): frames are selected by scene, ``fid.split('_')[0]``
(``DatasetObstacleTrack.set_frames``); ``ObstacleTrack-validation`` also drops the ``exclude_prefix`` ids; the
snowstorm frames are listed in ``ErasingSubset`` (``Erasing21-snowstorm``, 55 = the track's count), as are the
``Erasing-*`` subsets. Counts are the ``expected_length`` of the reference where it gives one.
"""

from dataclasses import dataclass

TRACKS = "road_anomaly_benchmark/datasets/tracks.py"
TRACKS_EXTRA = "road_anomaly_benchmark/datasets/tracks_extra.py"


def _numbered(groups):
    """``(("sheep", 2),)`` -> ``("sheep0000", "sheep0001")``; an int tuple instead of a count names the numbers."""
    ids = []
    for prefix, numbers in groups:
        ids += [f"{prefix}{n:04d}" for n in (range(numbers) if isinstance(numbers, int) else numbers)]
    return tuple(sorted(ids))


RA21_ANIMALS = _numbered((("zebra", 2), ("sheep", 11), ("rhino", 2), ("pig", 2), ("lion", 1), ("leopard", 1),
                          ("horse", 5), ("goose", 1), ("elephant", 12), ("donkey", 2), ("deer", 2), ("cow", 14),
                          ("cock", 1), ("camel", 2), ("bear", 1)))
RA21_VEHICLES = _numbered((("airplane", 2), ("boat_trailer", 5), ("caravan", 8), ("carriage", (1,)),  # the one
                           ("scooter", 1), ("tractor", 6)))                                           # without horse
RA21_OTHER = _numbered((("coffin", 1), ("cones", 7), ("hay", 1), ("piano", 1), ("tent", 1)))
RA21_TEST = tuple(sorted(set(RA21_ANIMALS + RA21_VEHICLES + RA21_OTHER) | set(_numbered((("carriage", 8),)))))
RA21_VALIDATION = _numbered((("validation", 10),))

RO21_SCENES = ("curvy-street", "one-way-street", "gravel", "greyasphalt", "motorway", "paving", "darkasphalt",
               "darkasphalt2", "snowstorm1", "snowstorm2", "driveway", "validation")
RO21_VALIDATION_EXCLUDED = ("validation_19", "validation_21", "validation_22", "validation_23", "validation_24",
                            "validation_25", "validation_26", "validation_27", "validation_28", "validation_29")

RO21_ERASING20_NO_DOG = (
    "darkasphalt_axestump_2", "darkasphalt_axestump_3", "darkasphalt_bag_3", "darkasphalt_basket_2",
    "darkasphalt_basket_3", "darkasphalt_boot_2", "darkasphalt_boot_3", "darkasphalt_bottles_1",
    "darkasphalt_bottles_2", "darkasphalt_bucket_3", "darkasphalt_bucket_4", "darkasphalt_canister_2",
    "darkasphalt_canister_3", "darkasphalt_cans_1", "darkasphalt_cans_2", "darkasphalt_helmetO_1",
    "darkasphalt_helmetO_2", "darkasphalt_stump_1", "darkasphalt_stump_2", "darkasphalt_watercanS_2",
    "gravel_axestump_2", "gravel_axestump_3", "gravel_bag_3", "gravel_basket_2", "gravel_basket_3", "gravel_boot_1",
    "gravel_boot_2", "gravel_bottle_2", "gravel_bottle_3", "gravel_bottle_4", "gravel_bucket_3",
    "gravel_canister_3", "gravel_canister_4", "gravel_cans2_2", "gravel_helmetG_2", "gravel_log_2", "gravel_log_3",
    "gravel_stump_1", "gravel_stump_2", "gravel_watercanS_2", "greyasphalt_axestump_2", "greyasphalt_axestump_3",
    "greyasphalt_bag_3", "greyasphalt_bag_4", "greyasphalt_basket_3", "greyasphalt_basket_4", "greyasphalt_boot_2",
    "greyasphalt_boot_3", "greyasphalt_bottle_1", "greyasphalt_bottle_2", "greyasphalt_canister_2",
    "greyasphalt_canister_3", "greyasphalt_cansA_1", "greyasphalt_cansB_2", "greyasphalt_helmetB_1",
    "greyasphalt_helmetB_2", "greyasphalt_stump_2", "greyasphalt_stump_3", "greyasphalt_watercanB_4",
    "greyasphalt_watercanS_2", "motorway_axestump_2", "motorway_basket_1", "motorway_basket_4", "motorway_boot_1",
    "motorway_boot_3", "motorway_boot_6_and_bird", "motorway_bottles_1", "motorway_bottles_k", "motorway_bucket_3",
    "motorway_canister_3", "motorway_cans_1", "motorway_helmetB_1", "motorway_helmetB_3", "motorway_helmetO_1",
    "motorway_stone_1", "motorway_stone_2", "motorway_stump_2", "motorway_stump_3", "motorway_triangle_2",
    "motorway_watercanS_1", "paving_axe_2", "paving_axestump_2", "paving_bag_3", "paving_bag_6", "paving_basket_3",
    "paving_basket_5", "paving_boot_1", "paving_boot_2", "paving_bottles_1", "paving_bottles_2", "paving_bucket_3",
    "paving_bucket_6", "paving_canister_4", "paving_cans_2", "paving_helmetB_1", "paving_helmetB_2",
    "paving_stump_2", "paving_watercanS_2", "paving_wood_2", "paving_wood_3",
)
RO21_ERASING20_DOG = tuple(f"darkasphalt2_dog_{n}" for n in range(1, 6))
RO21_SNOWSTORM = tuple(sorted((
    "snowstorm1_00_00_51.868", "snowstorm1_00_00_56.106", "snowstorm1_00_00_59.226", "snowstorm1_00_03_05.185",
    "snowstorm1_00_03_08.939", "snowstorm1_00_03_24.738", "snowstorm1_00_07_41.845", "snowstorm1_00_07_43.930",
    "snowstorm1_00_08_18.898", "snowstorm1_00_08_21.968", "snowstorm1_00_08_26.106", "snowstorm1_00_09_22.178",
    "snowstorm1_00_10_06.489", "snowstorm1_00_10_48.898", "snowstorm1_00_10_52.886", "snowstorm1_00_10_55.939",
    "snowstorm1_00_11_28.972", "snowstorm1_00_11_33.009", "snowstorm1_00_13_15.261", "snowstorm1_00_13_18.748",
    "snowstorm1_00_14_02.892", "snowstorm1_00_14_05.595", "snowstorm1_00_14_37.727", "snowstorm1_00_14_40.363",
    "snowstorm1_00_15_20.970", "snowstorm1_00_15_24.040", "snowstorm1_00_15_26.042", "snowstorm1_00_15_56.322",
    "snowstorm1_00_16_00.827", "snowstorm1_00_16_02.578", "snowstorm2_00_00_49.600", "snowstorm2_00_00_52.502",
    "snowstorm2_00_01_35.045", "snowstorm2_00_01_38.181", "snowstorm2_00_01_39.950", "snowstorm2_00_02_27.047",
    "snowstorm2_00_02_30.667", "snowstorm2_00_02_32.753", "snowstorm2_00_03_09.556", "snowstorm2_00_03_13.443",
    "snowstorm2_00_04_07.881", "snowstorm2_00_04_12.152", "snowstorm2_00_04_14.087", "snowstorm2_00_04_46.303",
    "snowstorm2_00_04_49.172", "snowstorm2_00_04_52.192", "snowstorm2_00_05_47.380", "snowstorm2_00_05_53.503",
    "snowstorm2_00_05_55.972", "snowstorm2_00_06_00.260", "snowstorm2_00_06_46.423", "snowstorm2_00_06_49.910",
    "snowstorm2_00_06_52.545", "snowstorm2_00_06_54.030", "snowstorm2_00_07_27.397",
)))
RO21_ERASING20 = tuple(sorted(RO21_ERASING20_NO_DOG + RO21_ERASING20_DOG))
RO21_ERASING21 = tuple(sorted(RO21_ERASING20 + RO21_SNOWSTORM))


@dataclass(frozen=True)
class Split:
    """A frame selection: the official name, the scenes (RO21) or explicit ``ids`` it keeps, its counts, source."""

    official: str
    count: int | None
    labelled: int
    source: str
    scenes: tuple | None = None  # RoadObstacle21: keep frames of these scenes
    ids: tuple | None = None  # an explicit official frame list (selects, and is checked against)
    prefix: str | None = None  # RoadAnomaly21 rule: keep ids starting with it (True) / not (False, see exclude)
    exclude_prefix: tuple = ()
    listed: tuple | None = None  # official list to check a rule-selected split against


RA21_SPLITS = {
    "all": Split("AnomalyTrack-all", 110, 10, f"{TRACKS} DatasetAnomalyTrack", listed=RA21_TEST + RA21_VALIDATION),
    "validation": Split("AnomalyTrack-validation", 10, 10, f"{TRACKS_EXTRA} RoadAnomalyByClass", prefix="validation",
                        listed=RA21_VALIDATION),
    "test": Split("AnomalyTrack-test", 100, 0, f"{TRACKS_EXTRA} RoadAnomalyByClass", ids=RA21_TEST),
    "animals": Split("AnomalyTrack-animals", 59, 0, f"{TRACKS_EXTRA} RoadAnomalyByClass", ids=RA21_ANIMALS),
    "vehicles": Split("AnomalyTrack-vehicles", 23, 0, f"{TRACKS_EXTRA} RoadAnomalyByClass", ids=RA21_VEHICLES),
    "other": Split("AnomalyTrack-other", 11, 0, f"{TRACKS_EXTRA} RoadAnomalyByClass", ids=RA21_OTHER),
}

_TRACK = f"{TRACKS} DatasetObstacleTrack"
_SCENE = f"{TRACKS} DatasetObstacleTrack.SCENE_SPLITS"
_ERASING = f"{TRACKS_EXTRA} ErasingSubset"
_TEST_SCENES = tuple(s for s in RO21_SCENES if s not in ("snowstorm1", "snowstorm2", "driveway", "validation"))
RO21_SPLITS = {
    "all": Split("ObstacleTrack-all", 442, 30, f"{_TRACK} (no count upstream; 327 + 30 + 55 + 30)", scenes=RO21_SCENES),
    "test": Split("ObstacleTrack-test", 327, 0, _TRACK, scenes=_TEST_SCENES),
    # upstream's rule (every scene but driveway) also keeps the 30 validation frames, 412 in all, against its own
    # expected_length 382 = test + snowstorm, so its check fails on the public images; the count wins here
    "noNight": Split("ObstacleTrack-noNight", 382, 0, f"{_TRACK} (validation scene left out to match its count 382)",
                     scenes=_TEST_SCENES + ("snowstorm1", "snowstorm2")),
    "night": Split("ObstacleTrack-night", 30, 0, _TRACK, scenes=("driveway",)),
    "snowstorm": Split("ObstacleTrack-snowstorm", 55, 0, _TRACK, scenes=("snowstorm1", "snowstorm2"),
                       listed=RO21_SNOWSTORM),
    "validation": Split("ObstacleTrack-validation", 30, 30, _TRACK, scenes=("validation",),
                        exclude_prefix=RO21_VALIDATION_EXCLUDED),
    "curvy": Split("ObstacleScene-curvy", None, 0, _SCENE, scenes=("curvy-street",)),
    "darkasphalt": Split("ObstacleScene-darkasphalt", None, 0, _SCENE, scenes=("darkasphalt",)),
    "darkasphaltDog": Split("ObstacleScene-darkasphaltDog", None, 0, _SCENE, scenes=("darkasphalt2",)),
    "darkasphaltAll": Split("ObstacleScene-darkasphaltAll", None, 0, _SCENE, scenes=("darkasphalt", "darkasphalt2")),
    "gravel": Split("ObstacleScene-gravel", None, 0, _SCENE, scenes=("gravel",)),
    "greyasphalt": Split("ObstacleScene-greyasphalt", None, 0, _SCENE, scenes=("greyasphalt",)),
    "motorway": Split("ObstacleScene-motorway", None, 0, _SCENE, scenes=("motorway",)),
    "shiny": Split("ObstacleScene-shiny", None, 0, _SCENE, scenes=("one-way-street",)),
    "paving": Split("ObstacleScene-paving", None, 0, _SCENE, scenes=("paving",)),
    "erasing20": Split("Erasing-20", 105, 0, _ERASING, ids=RO21_ERASING20),
    "erasing20nodog": Split("Erasing-20nodog", 100, 0, _ERASING, ids=RO21_ERASING20_NO_DOG),
    # the list upstream builds (Erasing20 + the 55 snowstorm frames) has 160 ids; its expected_length 155 is never
    # checked (ErasingSubset does not call check_size): the list wins
    "erasing21": Split("Erasing-21", 160, 0, f"{_ERASING} (list of 160; its unchecked expected_length says 155)",
                       ids=RO21_ERASING21),
}


def select(split, fid):
    """Whether frame ``fid`` belongs to ``split`` by its official rule (list, scene or prefix)."""
    if split.ids is not None:
        return fid in split.ids
    if split.scenes is not None and fid.split("_")[0] not in split.scenes:
        return False
    if split.prefix is not None and not fid.startswith(split.prefix):
        return False
    return not fid.startswith(split.exclude_prefix) if split.exclude_prefix else True


def official_list(split):
    """The official frame list of ``split`` (explicit ids), or ``None`` where the reference selects by rule only."""
    return split.ids if split.ids is not None else split.listed
