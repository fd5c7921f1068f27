"""E-mail, SMS and voice providers (not chat platforms), and how Vigil uses them.

base.py the contract (Medium, Contact, Message, MediaProvider) and the provider registry; email.py,
twilio.py, http_sms.py, aliyun_sms.py the providers; senders.py turns VIGIL_EMAIL / VIGIL_SMS /
VIGIL_VOICE into delivery senders; voice_callback.py the Twilio keypad route.
"""
