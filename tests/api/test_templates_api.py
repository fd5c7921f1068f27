async def test_template_override_preview_and_validation(app):
    body = await app.call("POST", "/templates", {"medium": "sms", "source": "{% if %}"}, expect=400)
    assert "line 1" in body["error"]["message"]
    await app.post("/templates", {"medium": "sms", "event_type": "i_new", "source": "PAGE {{ title }}"})
    again = await app.post("/templates", {"medium": "sms", "event_type": "i_new", "source": "PAGE2 {{ title }}"})
    assert (await app.get("/templates"))["total"] == 1 and again["source"].startswith("PAGE2")
    preview = await app.post("/templates/preview", {"medium": "sms", "event_type": "i_new"})
    assert preview["text"] == "PAGE2 Sample: disk full on db-1" and not preview["used_fallback"]
    broken = await app.post("/templates/preview", {"medium": "sms", "source": "{{ 1/0 }}"})
    assert broken["used_fallback"] and "ZeroDivisionError" in broken["error"]
    await app.delete(f"/templates/{again['template_id']}")
    assert (await app.post("/templates/preview", {"medium": "sms"}))["text"].startswith("[Critical]")
