"""Dataset names: Grid's rule for naming a dataset after its source, and the check."""

from __future__ import annotations

import pytest

import tensorlake as tl
from tensorlake.ingestion.naming import check_dataset_name, name_from_source


@pytest.mark.parametrize(
    "src,name",
    [
        ("s3://ryft-public-sample-data/esRedditJson/", "esredditjson"),  # the seed's examples
        ("https://bucket.s3.amazonaws.com/subfolder/trainingSet.tar.gz", "trainingset"),
        ("./imagenet_folder/", "imagenet_folder"),
        ("/data/My Photos 2024", "myphotos2024"),  # no spaces
        ("s3://bucket", "bucket"),
        ("https://host/manifest.JSON?X-Amz-Signature=abc", "manifest"),
        ("/tmp/Café-Ünïcode.zip", "cafe-unicode"),
        ("archive.v2.tar.gz", "archive-v2"),
        ("C:\\data\\Cats.TGZ", "cats"),
    ],
)
def test_a_dataset_is_named_after_its_source(src, name):
    assert name_from_source(src) == name


def test_names_that_cannot_be_made_valid_are_clear_errors():
    for src in ("/", "s3://", "./***.zip", "https://host/.json"):
        with pytest.raises(tl.InvalidNameError, match="Give a name"):
            name_from_source(src)
    assert len(name_from_source("x" * 100)) == 64
    for bad in ("Upper", "-dash", "with space", "a/b", "", "x" * 65, "dot.ted"):
        with pytest.raises(tl.InvalidNameError, match="lower-case letters"):
            check_dataset_name(bad)
    assert check_dataset_name("coco-train_2017") == "coco-train_2017"
