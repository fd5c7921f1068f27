"""E-mail, SMS and voice providers (not chat platforms), and how Vigil uses them.

base.py the contract (Medium, Contact, Message, MediaProvider); email.py, twilio.py, http_sms.py,
aliyun_sms.py the providers; registry.py the explicit PROVIDERS dict and build_provider; senders.py
turns VIGIL_EMAIL / VIGIL_SMS / VIGIL_VOICE into delivery senders; voice_callback.py the Twilio
keypad route. Nothing is imported here, so importing one provider does not import the others.
"""
