"""SQLModel tables: the persistent state of Vigil, one module per domain area.

Times are stored as timezone-aware UTC (`UTCDateTime`), so SQLite and PostgreSQL behave
the same. Free-form structures (labels, rules, responders) are JSON columns: they are
read and written whole, never queried inside.
"""

from core.models.base import UTCDateTime
from core.models.chat import Bot, BotPost, CardRef, ImApp, MappingRow
from core.models.custom_fields import CustomField  # noqa: F401  (custom fields, issue 13)
from core.models.enrichment import EnrichmentMapping, EnrichmentMappingRow, LabelEnrichment  # noqa: F401  (issue 13)
from core.models.escalation import Delivery, EscalationRule, Schedule, Template
from core.models.incidents import (
    Alert,
    ChangeRecord,
    Channel,
    Incident,
    Integration,
    StoredEvent,
    TimelineEntry,
)
from core.models.intake import MailRules, UnroutedEvent  # noqa: F401  (unrouted events, e-mail intake: issue 13)
from core.models.jobs import Job
from core.models.noise import DropRule, FlapState, InhibitRule, SilenceRule
from core.models.oncall import OncallRole, ShiftNotice, ShiftNoticeSetting  # noqa: F401  (on-call roles, issue 13)
from core.models.outgoing import CustomAction, Webhook
from core.models.people import ApiToken, Member, Team
from core.models.personal import CalendarFeed, ContactVerification  # noqa: F401  (personal center, issue 12)
from core.models.push import PushSubscription, VapidKey  # noqa: F401
from core.models.sso import SsoIdentity, SsoProvider  # noqa: F401  (single sign-on, issue 12)
from core.models.subscriptions import SubscriptionRule  # noqa: F401  (subscription rules, issue 13)
from core.models.web import MemberLogin, SignInFailure  # noqa: F401  (web sign-in, issue 12)

__all__ = [
    "CustomAction", "DropRule", "FlapState", "InhibitRule", "SilenceRule", "Webhook",
    "Alert", "ApiToken", "Bot", "BotPost", "CardRef", "ChangeRecord", "Channel", "Delivery", "EscalationRule", "ImApp", "Incident",
    "Integration", "Job", "MappingRow", "Member", "Schedule", "StoredEvent", "Team", "Template", "TimelineEntry",
    "UTCDateTime",
]
