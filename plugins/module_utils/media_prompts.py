# -*- coding: utf-8 -*-
# Copyright: voxplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The built-in prompts of the media service: their keys, their texts in every language of
``rules.LANGUAGES``, and how sentences with a number in them are put together.

The media role speaks every text of ``PROMPTS`` (and the numbers ``number/0`` ..
``number/<MAX_SPOKEN_NUMBER>``) with a text-to-speech engine at deploy time into
``<prompts_dir>/<language>/<key>.wav``; ``TONES`` are synthesised beside them. ``TEMPLATES`` are
texts with a value in them (the extension's name), spoken by the service at first use.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.voxplane.pbx.plugins.module_utils.rules import LANGUAGES

# Counts above this are said as "more than <it>" (there is one prompt per number up to it).
MAX_SPOKEN_NUMBER = 100

PROMPTS = {
    # Leaving a message.
    'greeting_unavailable': {
        'en': 'The person you are calling is not available.',
        'de': 'Der gewünschte Gesprächspartner ist zurzeit nicht erreichbar.'},
    'greeting_busy': {
        'en': 'The person you are calling is on the phone.',
        'de': 'Der gewünschte Gesprächspartner telefoniert gerade.'},
    'after_the_tone': {
        'en': 'Please leave a message after the tone. When you are done, press the hash key or hang up.',
        'de': 'Bitte hinterlassen Sie eine Nachricht nach dem Signalton. Wenn Sie fertig sind, drücken Sie '
              'die Raute-Taste oder legen Sie auf.'},
    'message_kept': {
        'en': 'Your message has been recorded.',
        'de': 'Ihre Nachricht wurde aufgezeichnet.'},
    'mailbox_full': {
        'en': 'This mailbox is full and cannot take any more messages.',
        'de': 'Dieses Postfach ist voll und kann keine Nachrichten mehr aufnehmen.'},
    # Logging in.
    'enter_mailbox': {
        'en': 'Please enter your mailbox number, followed by the hash key.',
        'de': 'Bitte geben Sie Ihre Postfachnummer ein, gefolgt von der Raute-Taste.'},
    'enter_pin': {
        'en': 'Please enter your PIN, followed by the hash key.',
        'de': 'Bitte geben Sie Ihre PIN ein, gefolgt von der Raute-Taste.'},
    'invalid_pin': {
        'en': 'That was not correct.',
        'de': 'Das war nicht richtig.'},
    'mailbox_locked': {
        'en': 'This mailbox is locked. Please ask your administrator to unlock it.',
        'de': 'Dieses Postfach ist gesperrt. Bitte lassen Sie es von Ihrem Administrator entsperren.'},
    'no_pin': {
        'en': 'This mailbox has no PIN yet. Please ask your administrator for one.',
        'de': 'Für dieses Postfach ist noch keine PIN eingerichtet. Bitte wenden Sie sich an Ihren Administrator.'},
    # The counts.
    'you_have': {'en': 'You have', 'de': 'Sie haben'},
    'and': {'en': 'and', 'de': 'und'},
    'more_than': {'en': 'more than', 'de': 'mehr als'},
    'no_messages': {'en': 'You have no messages.', 'de': 'Sie haben keine Nachrichten.'},
    'no_new_messages': {'en': 'no new messages', 'de': 'keine neuen Nachrichten'},
    'new_message_one': {'en': 'one new message', 'de': 'eine neue Nachricht'},
    'new_messages': {'en': 'new messages', 'de': 'neue Nachrichten'},
    'saved_message_one': {'en': 'one saved message', 'de': 'eine gespeicherte Nachricht'},
    'saved_messages': {'en': 'saved messages', 'de': 'gespeicherte Nachrichten'},
    # The mailbox menu.
    'main_menu': {
        'en': 'To listen to your messages, press 1. For the mailbox options, press 0. To end, press the hash key.',
        'de': 'Um Ihre Nachrichten abzuhören, drücken Sie die 1. Für die Einstellungen des Postfachs drücken '
              'Sie die 0. Zum Beenden drücken Sie die Raute-Taste.'},
    'new_message': {'en': 'New message', 'de': 'Neue Nachricht'},
    'saved_message': {'en': 'Saved message', 'de': 'Gespeicherte Nachricht'},
    'message_menu': {
        'en': 'To hear it again, press 5. For the next message, press 6. To delete it, press 7. To save it, '
              'press 9. For the previous message, press 4. For the main menu, press the star key.',
        'de': 'Zum Wiederholen drücken Sie die 5. Zur nächsten Nachricht die 6. Zum Löschen die 7. Zum '
              'Speichern die 9. Zur vorigen Nachricht die 4. Zurück zum Hauptmenü mit der Stern-Taste.'},
    'message_deleted': {'en': 'Message deleted.', 'de': 'Nachricht gelöscht.'},
    'message_saved': {'en': 'Message saved.', 'de': 'Nachricht gespeichert.'},
    'no_more_messages': {'en': 'There are no more messages.', 'de': 'Es gibt keine weiteren Nachrichten.'},
    'first_message': {'en': 'This is the first message.', 'de': 'Das ist die erste Nachricht.'},
    'options_menu': {
        'en': 'To record your greeting for when you are not available, press 1. For when you are on the phone, '
              'press 2. To change your PIN, press 4. For the main menu, press the star key.',
        'de': 'Um Ihre Ansage für Abwesenheit aufzunehmen, drücken Sie die 1. Für die Ansage, wenn Sie '
              'telefonieren, die 2. Um Ihre PIN zu ändern, die 4. Zurück zum Hauptmenü mit der Stern-Taste.'},
    'record_greeting': {
        'en': 'Please record your greeting after the tone. When you are done, press the hash key.',
        'de': 'Bitte sprechen Sie Ihre Ansage nach dem Signalton. Wenn Sie fertig sind, drücken Sie die Raute-Taste.'},
    'greeting_menu': {
        'en': 'To keep this greeting, press 1. To record it again, press 2. To cancel, press the star key.',
        'de': 'Um diese Ansage zu behalten, drücken Sie die 1. Um sie neu aufzunehmen, die 2. Zum Abbrechen die '
              'Stern-Taste.'},
    'greeting_saved': {'en': 'Your greeting has been saved.', 'de': 'Ihre Ansage wurde gespeichert.'},
    'enter_new_pin': {
        'en': 'Please enter your new PIN of 4 to 8 digits, followed by the hash key.',
        'de': 'Bitte geben Sie Ihre neue PIN mit 4 bis 8 Ziffern ein, gefolgt von der Raute-Taste.'},
    'repeat_new_pin': {
        'en': 'Please enter the new PIN again, followed by the hash key.',
        'de': 'Bitte geben Sie die neue PIN noch einmal ein, gefolgt von der Raute-Taste.'},
    'pins_differ': {'en': 'The two PINs differ.', 'de': 'Die beiden PINs sind verschieden.'},
    'pin_refused': {'en': 'This PIN cannot be used.', 'de': 'Diese PIN kann nicht verwendet werden.'},
    'pin_changed': {'en': 'Your PIN has been changed.', 'de': 'Ihre PIN wurde geändert.'},
    # IVR menus.
    'menu_choose': {
        'en': 'Please make your choice on the keypad of your phone.',
        'de': 'Bitte treffen Sie Ihre Auswahl über die Tastatur Ihres Telefons.'},
    'not_reached': {
        'en': 'Your choice cannot be reached at the moment.',
        'de': 'Ihre Auswahl ist im Moment nicht erreichbar.'},
    # Conference rooms.
    'conference_pin': {
        'en': 'Please enter the PIN of the conference, followed by the hash key.',
        'de': 'Bitte geben Sie die PIN der Konferenz ein, gefolgt von der Raute-Taste.'},
    'conference_full': {'en': 'This conference is full.', 'de': 'Diese Konferenz ist voll.'},
    'conference_ended': {'en': 'The conference has ended.', 'de': 'Die Konferenz ist beendet.'},
    # Call queues.
    'queue_position': {'en': 'You are caller number', 'de': 'Sie sind Anrufer Nummer'},
    'queue_wait': {'en': 'Your expected waiting time is about', 'de': 'Ihre voraussichtliche Wartezeit beträgt etwa'},
    'minutes': {'en': 'minutes', 'de': 'Minuten'},
    'invalid_choice': {'en': 'Invalid choice.', 'de': 'Ungültige Eingabe.'},
    'goodbye': {'en': 'Goodbye.', 'de': 'Auf Wiederhören.'},
}

# Texts with a value in them, spoken at first use: who a generated greeting names (the
# extension's name, else its number digit by digit).
TEMPLATES = {
    'greeting_unavailable_named': {'en': '{who} is not available.', 'de': '{who} ist zurzeit nicht erreichbar.'},
    'greeting_busy_named': {'en': '{who} is on the phone.', 'de': '{who} telefoniert gerade.'},
    'extension_number': {'en': 'Extension {digits}', 'de': 'Nebenstelle {digits}'},
}

# The e-mail of a new message (voicemail to e-mail): subject and body per language. Values:
# mailbox, name (the mailbox's), caller, received (UTC), seconds, attached (ATTACHED or NOT_ATTACHED).
MAIL = {
    'subject': {'en': 'New voicemail from {caller} for {mailbox} ({seconds} s)',
                'de': 'Neue Sprachnachricht von {caller} für {mailbox} ({seconds} s)'},
    'body': {'en': 'Hello {name},\n\n{caller} left you a message of {seconds} seconds on {received} UTC. {attached}\n',
             'de': 'Hallo {name},\n\n{caller} hat Ihnen am {received} UTC eine Nachricht von {seconds} Sekunden '
                   'hinterlassen. {attached}\n'},
    'attached': {'en': 'The recording is attached.', 'de': 'Die Aufnahme ist angehängt.'},
    'not_attached': {'en': 'Dial *86 to listen to it.', 'de': 'Wählen Sie *86, um sie abzuhören.'},
    'anonymous': {'en': 'An anonymous caller', 'de': 'Ein anonymer Anrufer'},
}

# Tones: key -> ((frequency Hz, milliseconds), ...), a frequency of 0 is silence.
TONES = {
    'beep': ((0, 100), (1000, 400), (0, 100)),
    # What a caller hears while the service rings a destination for it (looped): the European
    # ringing tone, 425 Hz, 1 s on, 4 s off.
    'ringback': ((425, 1000), (0, 4000)),
    # Someone joins or leaves a conference (rising, falling), the built-in music (looped).
    'joined': ((0, 50), (880, 150), (1320, 200)),
    'left': ((0, 50), (1320, 150), (880, 200)),
    'music': ((523, 300), (659, 300), (784, 300), (1047, 300), (784, 300), (659, 300), (0, 300)),
}


def number_key(n):
    return 'number/%d' % n


def spoken_texts(language):
    """key -> text of every prompt the role speaks at deploy time in ``language``."""
    texts = dict((key, by_language[language]) for key, by_language in PROMPTS.items())
    texts.update((number_key(n), str(n)) for n in range(MAX_SPOKEN_NUMBER + 1))
    return texts


def prompt_keys():
    """Every key a prompts folder of one language holds (spoken ones and tones)."""
    return sorted(set(spoken_texts(LANGUAGES[0])) | set(TONES))


def number(n):
    """The keys that say the whole number ``n`` (above MAX_SPOKEN_NUMBER: 'more than' it)."""
    if n > MAX_SPOKEN_NUMBER:
        return ['more_than', number_key(MAX_SPOKEN_NUMBER)]
    return [number_key(n)]


def _count(n, folder):
    if n == 1:
        return ['%s_message_one' % folder]
    return number(n) + ['%s_messages' % folder]


def message_counts(new, saved):
    """The keys of 'You have <n> new messages and <m> saved messages' (each part only when it
    says something: no saved part without saved messages; 'no messages' when there are none)."""
    if not new and not saved:
        return ['no_messages']
    keys = ['you_have'] + (_count(new, 'new') if new else ['no_new_messages'])
    if saved:
        keys += ['and'] + _count(saved, 'saved')
    return keys


def mail_text(message, mailbox, name, language):
    """(subject, body) of the e-mail of a voicemail ``message`` (store.voicemail_message) for
    ``mailbox`` (its internal number) whose owner is ``name``."""
    language = language if language in MAIL['subject'] else LANGUAGES[0]
    caller = message.get('caller')
    if caller and message.get('caller_name'):
        caller = '%s (%s)' % (message['caller_name'], caller)
    values = {'mailbox': mailbox, 'name': name or mailbox, 'caller': caller or MAIL['anonymous'][language],
              'received': message['received_at'].replace('T', ' ').rstrip('Z'),
              'seconds': int(round(message['duration_ms'] / 1000.0)),
              'attached': MAIL['attached' if message.get('email', {}).get('attach', True) else 'not_attached'][language]}
    return MAIL['subject'][language].format(**values), MAIL['body'][language].format(**values)


def template(key, language, **values):
    """A TEMPLATES text in ``language`` with its values filled in."""
    return TEMPLATES[key][language].format(**values)


def spelled_digits(text):
    """Digits to be said one by one ('210' -> '2 1 0')."""
    return ' '.join(text)
