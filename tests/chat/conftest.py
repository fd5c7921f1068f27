"""The chat callback tests share one way to run each platform against Vigil (defined beside the replay tests):
`kit` (a platform fake and how it signs a click) and `vigil` (a running Vigil with its IM app)."""

from tests.chat.test_callback_replay import kit, vigil  # noqa: F401
