#!/usr/bin/env python3
"""Regenerates iso639-3.tsv from Debian's iso-codes package (apt install iso-codes):
ISO 639-3 living languages with their English and French names."""
import gettext
import json
import pathlib

source = json.load(open('/usr/share/iso-codes/json/iso_639-3.json'))['639-3']
french = gettext.translation('iso_639-3', localedir='/usr/share/locale', languages=['fr'])
rows = []
for language in source:
    if language.get('type') != 'L':
        continue
    english = language['name']
    translated = french.gettext(english)
    rows.append('\t'.join([
        language.get('alpha_2', language['alpha_3']),
        language['alpha_3'],
        english,
        language.get('inverted_name', ''),
        translated if translated != english else '',
    ]))
header = [
    '# ISO 639-3 living languages: code (ISO 639-1 where it has one, else 639-3), 639-3 code,',
    "# English name, English inverted name, French name. From Debian's iso-codes 4.15.0",
    '# (https://salsa.debian.org/iso-codes-team/iso-codes, LGPL-2.1-or-later): iso_639-3.json',
    '# and its French translation iso_639-3.po. Regenerate with node/core/data/iso639.py.',
]
out = pathlib.Path(__file__).with_name('iso639-3.tsv')
out.write_text('\n'.join(header + rows) + '\n')
