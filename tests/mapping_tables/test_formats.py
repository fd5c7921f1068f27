import pytest

from core.types import Platform
from mapping_tables.formats import check_identity, platform_of


@pytest.mark.parametrize("platform, im_id, id_type, expected", [
    (Platform.SLACK, "U024BE7LH", None, "user_id"),
    (Platform.SLACK, "W012A3CDE", "user_id", "user_id"),
    (Platform.FEISHU, "ou_7d8a6e6df7621556ce0d21922b676706ccs", None, "open_id"),
    (Platform.FEISHU, "on_94a1ee5551019f18cd73d9f111898cf2", "union_id", "union_id"),
    (Platform.FEISHU, "3e3cf96b", "user_id", "user_id"),
    (Platform.DINGTALK, "manager4220", None, "userid"),
    (Platform.DINGTALK, "+8613800138000", "mobile", "mobile"),
    (Platform.WECOM, "zhangsan", None, "userid"),
    (Platform.TEAMS, "00000000-0000-0000-0000-000000000001", None, "aad_object_id"),
    (Platform.TELEGRAM, "123456789", None, "user_id"),
    (Platform.ZOOM, "kdyfdsu7rqqyvq3yw8n2pg@xmpp.zoom.us", None, "user_id"),
])
def test_valid_identities(platform, im_id, id_type, expected):
    assert check_identity(platform, im_id, id_type) == expected


@pytest.mark.parametrize("platform, im_id, id_type, message", [
    (Platform.SLACK, "alice", None, "not a valid slack user_id"),
    (Platform.SLACK, "U024BE7LH", "open_id", "not a slack id type"),
    (Platform.FEISHU, "ou_UPPER", None, "not a valid feishu open_id"),
    (Platform.TEAMS, "not-a-guid", None, "aad_object_id"),
    (Platform.TELEGRAM, "-12", None, "telegram"),
    (Platform.WECOM, "", None, "wecom"),
    (Platform.WECOM, "a b", None, "wecom"),
])
def test_invalid_identities_name_the_problem(platform, im_id, id_type, message):
    with pytest.raises(ValueError, match=message):
        check_identity(platform, im_id, id_type)


@pytest.mark.parametrize("name, expected", [("slack", Platform.SLACK), ("Lark", Platform.FEISHU),
                                            ("feishu", Platform.FEISHU), ("TEAMS", Platform.TEAMS)])
def test_platform_names(name, expected):
    assert platform_of(name) is expected


@pytest.mark.parametrize("name", ["api", "voice", "irc"])
def test_platforms_without_tables(name):
    with pytest.raises(ValueError):
        platform_of(name)
