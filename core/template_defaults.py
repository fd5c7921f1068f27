"""The shipped notification templates: short, readable at 3 a.m., one per medium (+ a few per event)."""

from __future__ import annotations

_LABELS = "{% for k, v in labels.items() %}{% if loop.index <= 5 %}{{ k }}={{ v }} {% endif %}{% endfor %}"
_VERB = ("{{ {'i_new': 'Triggered', 'i_ack': 'Acknowledged', 'i_rslv': 'Closed', 'i_reopen': 'Reopened', "
         "'i_assign': 'Assigned', 'i_wake': 'Snooze ended', 'i_snooze': 'Snoozed', 'i_comm': 'Comment', "
         "'i_storm': 'Alert storm', 'i_unack': 'Unacknowledged', 'i_merge': 'Merged'}.get(event_type, 'Update') }}")

DEFAULTS: dict[tuple[str, str], str] = {
    ("sms", "default"): f"[{{{{ incident_severity }}}}] {_VERB}: {{{{ title }}}} ({{{{ alert_cnt }}}} alerts) "
                        "#{{ num }} {{ detail_url }}",
    ("voice", "default"): "Vigil alert. {{ incident_severity }} incident: {{ title }}. "
                          "{{ alert_cnt }} alerts in {{ channel_name or 'your channel' }}.",
    ("email", "default"): f"Subject: [{{{{ incident_severity }}}}] {_VERB}: {{{{ title }}}}\n"
                          "Incident #{{ num }} in {{ channel_name }}\n"
                          "Severity: {{ incident_severity }}\nProgress: {{ progress }}\n"
                          "Alerts: {{ alert_cnt }}\n" + "Labels: " + _LABELS + "\n\n"
                          "{{ description or '' }}\n\nOpen: {{ detail_url }}\n",
    ("im", "default"): f"**[{{{{ incident_severity }}}}] {_VERB}: {{{{ title }}}}**\n"
                       "#{{ num }} · {{ channel_name }} · {{ alert_cnt }} alerts\n" + _LABELS + "\n{{ detail_url }}",
    ("feishu_bot", "default"): f"**[{{{{ incident_severity }}}}] {_VERB}**: {{{{ title }}}}\n"
                               "{{ alert_cnt }} alerts · {{ channel_name }}\n[Open incident]({{ detail_url }})",
    ("dingtalk_bot", "default"): f"### [{{{{ incident_severity }}}}] {_VERB}\n\n**{{{{ title }}}}**\n\n"
                                 "- Alerts: {{ alert_cnt }}\n- Channel: {{ channel_name }}\n\n"
                                 "[Open incident]({{ detail_url }})",
    ("wecom_bot", "default"): f"**[{{{{ incident_severity }}}}] {_VERB}**\n> {{{{ title }}}}\n"
                              "> Alerts: {{ alert_cnt }}\n[Open incident]({{ detail_url }})",
    ("slack_bot", "default"): f"*[{{{{ incident_severity }}}}] {_VERB}*: {{{{ title }}}}\n"
                              "{{ alert_cnt }} alerts in {{ channel_name }} · <{{ detail_url }}|Open incident>",
    ("zoom_bot", "default"): f"[{{{{ incident_severity }}}}] {_VERB}: {{{{ title }}}} · {{{{ detail_url }}}}",
    ("telegram_bot", "default"): f"<b>[{{{{ incident_severity | html_escape }}}}] {_VERB}</b>: "
                                 "{{ title | html_escape }}\n{{ alert_cnt }} alerts · "
                                 "<a href=\"{{ detail_url | html_escape }}\">Open incident</a>",
}
