import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.selfhost.homelab.plugins.filter.restic_retention import FilterModule, restic_retention


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({"keep_last": 3}, ["--keep-last", "3"]),
        (
            {"keep_yearly": 2, "keep_daily": 7, "keep_hourly": 24, "keep_weekly": 4, "keep_monthly": 12,
             "keep_last": 1},
            ["--keep-last", "1", "--keep-hourly", "24", "--keep-daily", "7", "--keep-weekly", "4",
             "--keep-monthly", "12", "--keep-yearly", "2"],
        ),
        ({"keep_within": "1y6m"}, ["--keep-within", "1y6m"]),
        ({"keep_tags": ["keep", "release"]}, ["--keep-tag", "keep", "--keep-tag", "release"]),
        ({"keep_daily": "7", "keep_last": None}, ["--keep-daily", "7"]),
    ],
)
def test_policy_to_args(policy, expected):
    assert restic_retention(policy) == expected


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({}, "keeps nothing"),
        ({"keep_last": None}, "keeps nothing"),
        ({"daily": 7}, "unknown key"),
        ({"keep_daily": 0}, "keep_daily must be at least 1"),
        ({"keep_daily": -1}, "keep_daily must be at least 1"),
        ({"keep_daily": True}, "keep_daily must be a whole number"),
        ({"keep_daily": "seven"}, "keep_daily must be a whole number"),
        ({"keep_within": "7 days"}, "keep_within must be a restic duration"),
        ({"keep_tags": "keep"}, "keep_tags must be a list"),
        ({"keep_tags": [""]}, "keep_tags entries"),
        (["keep_last"], "must be a dict"),
    ],
)
def test_bad_policy_names_the_field(policy, message):
    with pytest.raises(AnsibleFilterError, match="restic_retention: .*%s" % message):
        restic_retention(policy)


def test_filter_is_registered():
    assert FilterModule().filters()["restic_retention"] is restic_retention
