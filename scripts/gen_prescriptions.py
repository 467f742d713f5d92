#!/usr/bin/python3
"""Labelled prescription images for evaluating the hub's OCR.

Usage: gen_prescriptions.py OUT_DIR [--count N] [--seed S] [--jobs J]
(normally through the scripts/gen-prescriptions wrapper, which installs the
Debian packages first). Output is a deterministic function of --seed and --count.

Layouts (image i gets LAYOUTS[i % 3])
  gp_letterhead  A5 or A4 portrait. A GP's letterhead (practice, "Dr. med. ...",
                 specialty, address, phone, sometimes GLN/ZSR), a title, patient
                 and date of birth, place and date, then "Rp." and 1-4 items of
                 three or four lines: "<name> <strength> <form>", the sig, the
                 quantity (+ repeats), then an optional note and a signature.
  hospital       A4 portrait discharge prescription with ruled boxes: hospital
                 and department, a patient box (name, birth date, patient no.,
                 date), a table Medication | Strength | Dose | Qty with blank
                 ruled rows, a remarks box and a prescriber box (name, GLN,
                 signature).
  emediplan      A4 landscape, modelled on the printed Swiss eMediplan: logo,
                 patient block, "erstellt von" block, QR-like code, issue date,
                 the 11-column table (Medikament | Morgen | Mittag | Abend |
                 Nacht | Einheit | Von | Bis u. mit | Anwendungsinstruktion |
                 Anwendungsgrund | Verordnet durch) with the dose in the four
                 slot columns, "Bemerkung:" and a footer. de/fr/it labels only.
Languages de, fr, it, en (German most common). Dates dd.mm.yyyy, in English
dd/mm/yyyy or yyyy-mm-dd. Pages are rendered at 200-300 dpi with DejaVu,
Liberation and FreeFont faces (sans, serif and monospaced "printed forms").

Degradations (about 20 % of the images stay clean and are written as PNG; the
rest are "photos", written as JPEG). Applied in this order, each recorded in
the ground truth with the parameters actually used:
  perspective  {"kind", "keystone", "far_edge", "page_corners"}: the page lies on
               a textured desk and is seen at an angle (the far edge shrinks by
               `keystone` x page width per side, corners jittered).
  rotate       {"kind", "degrees", "page_corners"}: in-plane rotation, +-10 deg.
               page_corners = the page's TL, TR, BR, BL corners in output pixels
               after this step (so the last geometric entry gives the final
               page position).
  shadow       {"kind", "style": "gradient"|"blob", "strength", ...}
  blur         {"kind", "radius"}: Gaussian, 0.5-1.5 px.
  noise        {"kind", "sigma"}: Gaussian luminance noise, in 8-bit levels.
  jpeg         {"kind", "quality"}: 35-85; every degraded image has it.

Ground truth, OUT_DIR/NNNN.json (exactly these keys):
  id, split, layout, language, image, degradations,
  text        every printed line in reading order, joined with "\\n". Blocks are
              read top to bottom; side-by-side header blocks (eMediplan) block by
              block from the left; a label and its value on one line are one
              line; a table row is one line: its cells left to right joined by a
              single space (a wrapped cell's lines joined by a space, empty
              cells skipped). The hospital form's ruled patient and prescriber
              boxes are table rows (label + value per cell); its one-cell
              remarks box gives two lines, label and note. Graphics (logos,
              pills, QR, signature) are not text.
  patient     {name: "First Last" as printed, birth_date: ISO}
  prescriber  {name as printed in the letterhead/prescriber/"erstellt von" block,
               gln or null}
  date        ISO date of issue
  items       [{name (as printed, without strength/form), generic (catalog
               `ingredients`), catalog_gtin, strength (catalog, printed as is),
               form (as printed), dose (canonical "m-n-e-h", decimals, e.g.
               "0.5-0-1-0"), sig (as printed; eMediplan: the four slot cells
               joined by " "), quantity (int; null on the eMediplan, which
               prints none), repeats}]
  notes       the free-text note as printed (without its label) or "".
OUT_DIR/manifest.json lists every id with image, split, layout, language,
paper, dpi and degradation kinds, plus counts. NNNN.{json,jpg,png} files
already in OUT_DIR are deleted first, so the directory holds exactly one set.

Split: "tune" when the id's index % 4 == 0, else "holdout" (never tune on it).

Vocabulary, read at run time (nothing copied here):
  ../hub/data/demo-catalog.csv (relative to this script): the items. Products
  that are not taken on a daily schedule (vaccines, weekly injections,
  patches, single doses, as-needed rescue drugs) are skipped, because their
  posology has no 4-slot daily dose.
  $RXEDGE_FIXTURES/drugs/drug_names.tsv (default <repo>/../shared/fixtures):
  brand names. For single-ingredient items a brand variant (is_brand true,
  plain letters/hyphens/spaces, 4-24 chars) whose canonical equals the generic
  is printed instead of the catalog name with probability BRAND_P. Without the
  fixtures only catalog names are used (with a warning).
Person names, places, practice/hospital names, notes and the sig phrases are
built-in tables below.
"""

import argparse
import csv
import json
import math
import os
import random
import re
import sys
import time
from collections import Counter, defaultdict
from datetime import date, timedelta
from functools import lru_cache
from multiprocessing import Pool
from pathlib import Path
from statistics import NormalDist

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
CATALOG = HERE / ".." / "hub" / "data" / "demo-catalog.csv"
FIXTURES = Path(os.environ.get("RXEDGE_FIXTURES") or HERE.parent.parent / "shared" / "fixtures")
DRUG_NAMES = FIXTURES / "drugs" / "drug_names.tsv"

# --------------------------------------------------------------------------
# Sig vocabulary. The canonical dose has four slots: morning, noon, evening,
# night. Every sig below maps to exactly one dose; parse_sig() inverts this
# table and each generated sig is checked against it.
#
#   style    example (de / fr / it / en)                         dose
#   schema   "S: 1-0-1-0", "½-0-½-0", "S: 0-0-12-0 IE"           the numbers
#   freq     "2x täglich 1 Tablette" / "1 comprimé 2 fois par    n=2: 1-0-1-0
#            jour" / "1 compressa 2 volte al giorno" /           n=3: 1-1-1-0
#            "1 tablet twice daily"                              n=4: 1-1-1-1
#   once     "1x täglich 1 Tablette abends" / "... 1 fois par    the named slot
#            jour le soir" / "... once daily in the evening"
#   time     "1 morgens", "1 Tablette morgens und ½ abends",     each amount in
#            "1 le matin", "1 la sera", "2 puffs at bedtime"     its slot
#   apply    creams: "2x täglich auftragen", "appliquer le soir" amount 1
# An amount without a slot word never occurs, and "1x täglich" always names
# its slot, so no sig is ambiguous.
# --------------------------------------------------------------------------
FREQ_SLOTS = {2: (1, 0, 1, 0), 3: (1, 1, 1, 0), 4: (1, 1, 1, 1)}

SIG_VOCAB = {
    "de": {
        "freq": {1: "1x täglich", 2: "2x täglich", 3: "3x täglich", 4: "4x täglich"},
        "slot": ("morgens", "mittags", "abends", "zur Nacht"),
        "and": "und",
        "schema": ("S: {d}", "{d}", "Dos.: {d}", "S. {d}"),
        "freq_tpl": ("{freq} {a} {u}", "{a} {u} {freq}"),
        "once_tpl": ("{freq} {a} {u} {slot}",),
        "time_tpl": "{a} {u} {slot}",
        "apply": ("{freq} dünn auftragen", "{freq} {slot} auftragen", "{slots} auftragen"),
    },
    "fr": {
        "freq": {1: "1 fois par jour", 2: "2 fois par jour", 3: "3 fois par jour", 4: "4 fois par jour"},
        "slot": ("le matin", "à midi", "le soir", "au coucher"),
        "and": "et",
        "schema": ("S: {d}", "{d}", "Pos.: {d}"),
        "freq_tpl": ("{a} {u} {freq}",),
        "once_tpl": ("{a} {u} {freq} {slot}",),
        "time_tpl": "{a} {u} {slot}",
        "apply": ("appliquer {freq}", "appliquer {freq} {slot}", "appliquer {slots}"),
    },
    "it": {
        "freq": {1: "1 volta al giorno", 2: "2 volte al giorno", 3: "3 volte al giorno", 4: "4 volte al giorno"},
        "slot": ("al mattino", "a mezzogiorno", "la sera", "prima di dormire"),
        "and": "e",
        "schema": ("S: {d}", "{d}", "Pos.: {d}"),
        "freq_tpl": ("{a} {u} {freq}",),
        "once_tpl": ("{a} {u} {freq} {slot}",),
        "time_tpl": "{a} {u} {slot}",
        "apply": ("applicare {freq}", "applicare {freq} {slot}", "applicare {slots}"),
    },
    "en": {
        "freq": {1: "once daily", 2: "twice daily", 3: "three times daily", 4: "four times daily"},
        "slot": ("in the morning", "at noon", "in the evening", "at bedtime"),
        "and": "and",
        "schema": ("Sig: {d}", "{d}"),
        "freq_tpl": ("{a} {u} {freq}", "Take {a} {u} {freq}"),
        "once_tpl": ("{a} {u} {freq} {slot}",),
        "time_tpl": "{a} {u} {slot}",
        "apply": ("apply {freq}", "apply {freq} {slot}", "apply {slots}"),
    },
}

# Dose units per kind of product: (singular, plural, eMediplan "Einheit" cell).
UNITS = {
    "tab": {"de": ("Tablette", "Tabletten", "Stk"), "fr": ("comprimé", "comprimés", "pce"),
            "it": ("compressa", "compresse", "pz"), "en": ("tablet", "tablets", "tab")},
    "cap": {"de": ("Kapsel", "Kapseln", "Stk"), "fr": ("gélule", "gélules", "pce"),
            "it": ("capsula", "capsule", "pz"), "en": ("capsule", "capsules", "cap")},
    "iu": {"de": ("IE", "IE", "IE"), "fr": ("UI", "UI", "UI"), "it": ("UI", "UI", "UI"),
           "en": ("units", "units", "units")},
    "inj": {"de": ("Injektion", "Injektionen", "Stk"), "fr": ("injection", "injections", "pce"),
            "it": ("iniezione", "iniezioni", "pz"), "en": ("injection", "injections", "inj")},
    "puff": {"de": ("Hub", "Hübe", "Hub"), "fr": ("bouffée", "bouffées", "bouffée"),
             "it": ("inalazione", "inalazioni", "inal."), "en": ("puff", "puffs", "puff")},
    "spray": {"de": ("Sprühstoss", "Sprühstösse", "Hub"), "fr": ("pulvérisation", "pulvérisations", "pulv."),
              "it": ("spruzzo", "spruzzi", "spruzzo"), "en": ("spray", "sprays", "spray")},
    "drop": {"de": ("Tropfen", "Tropfen", "Trpf"), "fr": ("goutte", "gouttes", "gtt"),
             "it": ("goccia", "gocce", "gtt"), "en": ("drop", "drops", "drop")},
    "sachet": {"de": ("Beutel", "Beutel", "Btl"), "fr": ("sachet", "sachets", "sachet"),
               "it": ("bustina", "bustine", "bust."), "en": ("sachet", "sachets", "sachet")},
    "ml": {lang: ("ml", "ml", "ml") for lang in ("de", "fr", "it", "en")},
    "apply": {"de": ("", "", "Anw"), "fr": ("", "", "appl."), "it": ("", "", "appl."), "en": ("", "", "appl.")},
}

# Printed form names for the catalog's `form` (a trailing pack size such as
# "3 ml" is kept and appended). Unknown forms print as in the catalog.
FORM_NAMES = {
    "tablet": {"de": ["Tabl.", "Tabletten", "Filmtabl."], "fr": ["cpr.", "comprimés", "cpr. pell."],
               "it": ["cpr.", "compresse", "cpr. riv."], "en": ["tablets", "tab."]},
    "prolonged-release tablet": {"de": ["Retardtabl.", "Ret. Tabl."], "fr": ["cpr. ret.", "comprimés LP"],
                                 "it": ["cpr. RP", "compresse RP"], "en": ["PR tablets", "prolonged-release tablets"]},
    "modified-release tablet": {"de": ["MR-Tabl."], "fr": ["cpr. LM"], "it": ["cpr. RM"], "en": ["MR tablets"]},
    "orodispersible tablet": {"de": ["Schmelztabl."], "fr": ["cpr. orodisp."], "it": ["cpr. orodispersibili"],
                              "en": ["orodispersible tablets"]},
    "capsule": {"de": ["Kaps.", "Kapseln"], "fr": ["caps.", "gélules"], "it": ["caps.", "capsule"],
                "en": ["capsules", "caps."]},
    "prolonged-release capsule": {"de": ["Retardkaps."], "fr": ["gél. LP"], "it": ["caps. RP"], "en": ["PR capsules"]},
    "inhalation capsule": {"de": ["Inhalationskaps."], "fr": ["caps. pour inhalation"],
                           "it": ["caps. per inalazione"], "en": ["inhalation capsules"]},
    "pen": {"de": ["Fertigpen"], "fr": ["stylo prérempli"], "it": ["penna preriempita"], "en": ["pen"]},
    "prefilled pen": {"de": ["Fertigpen"], "fr": ["stylo prérempli"], "it": ["penna preriempita"], "en": ["prefilled pen"]},
    "prefilled syringe": {"de": ["Fertigspritze", "Fertigspr."], "fr": ["seringue préremplie"],
                          "it": ["siringa preriempita"], "en": ["prefilled syringe"]},
    "inhaler": {"de": ["Dosieraerosol"], "fr": ["aérosol doseur"], "it": ["inalatore"], "en": ["inhaler"]},
    "nasal spray": {"de": ["Nasenspray"], "fr": ["spray nasal"], "it": ["spray nasale"], "en": ["nasal spray"]},
    "eye drops": {"de": ["Augentropfen"], "fr": ["collyre"], "it": ["collirio"], "en": ["eye drops"]},
    "cream": {"de": ["Creme"], "fr": ["crème"], "it": ["crema"], "en": ["cream"]},
    "sachet": {"de": ["Btl.", "Beutel"], "fr": ["sachets"], "it": ["bustine"], "en": ["sachets"]},
    "syrup": {"de": ["Sirup"], "fr": ["sirop"], "it": ["sciroppo"], "en": ["syrup"]},
}

# Not on a daily schedule (weekly/one-off/as-needed/every 72 h): no 4-slot dose.
NON_DAILY = {
    "semaglutide", "dulaglutide", "adalimumab", "etanercept", "epoetin alfa", "tetanus toxoid",
    "influenza vaccine, inactivated or recombinant", "hepatitis b vaccine", "glucagon",
    "nitroglycerin", "fentanyl", "fosfomycin", "fluconazole",
}
BASAL_INSULINS = {"insulin glargine", "insulin detemir", "insulin degludec"}
BRAND_P = 0.35
# drug_names.tsv brand variants that name a dosage form, are not brands, or are
# gels/emulsions that would look wrong next to a tablet.
BRAND_STOP = ("rectal", "tube", "gel", "control", "other", "cream", "spray", "inject", "ibuleve", "diazemuls")

# Slot patterns and their weights (most prescriptions are once or twice daily).
DOSE_PATTERNS = [((1, 0, 0, 0), 26), ((0, 0, 1, 0), 14), ((1, 0, 1, 0), 26), ((1, 1, 1, 0), 12),
                 ((0, 0, 0, 1), 7), ((1, 1, 1, 1), 4), ((0, 1, 0, 0), 3), ((1, 1, 0, 0), 2)]

# --------------------------------------------------------------------------
# People, places and institutions
# --------------------------------------------------------------------------
FIRST_NAMES = {
    "de": {"f": ["Anna", "Ursula", "Ruth", "Elisabeth", "Verena", "Monika", "Sandra", "Andrea", "Barbara",
                 "Katharina", "Heidi", "Silvia", "Brigitte", "Claudia", "Nicole", "Sabine", "Regula", "Esther",
                 "Lea", "Laura", "Sarah", "Julia", "Margrit", "Rosmarie", "Käthi", "Doris", "Yvonne",
                 "Franziska", "Mirjam", "Jasmin"],
           "m": ["Peter", "Hans", "Thomas", "Daniel", "Martin", "Andreas", "Christian", "Markus", "Urs", "Beat",
                 "Reto", "Stefan", "Bruno", "Walter", "Werner", "Kurt", "Jürg", "Rolf", "Lukas", "Simon",
                 "Matthias", "Roger", "Fritz", "Ernst", "Heinz", "Marcel", "Patrick", "Adrian", "Samuel", "Jonas"]},
    "fr": {"f": ["Marie", "Nathalie", "Sophie", "Isabelle", "Catherine", "Christine", "Monique", "Françoise",
                 "Sylvie", "Valérie", "Chantal", "Céline", "Aurélie", "Joëlle", "Mireille", "Josiane", "Anne",
                 "Camille", "Léa", "Élodie"],
           "m": ["Jean", "Pierre", "Nicolas", "Laurent", "Philippe", "Michel", "Alain", "Olivier", "Christophe",
                 "Stéphane", "Jacques", "François", "Bernard", "Yves", "Frédéric", "Julien", "Sébastien",
                 "Grégoire", "Raphaël", "Jérôme"]},
    "it": {"f": ["Giulia", "Chiara", "Francesca", "Maria", "Anna", "Elena", "Sara", "Paola", "Laura", "Silvia",
                 "Federica", "Alessandra", "Giovanna", "Lucia", "Martina", "Rosa"],
           "m": ["Marco", "Luca", "Paolo", "Giovanni", "Andrea", "Alessandro", "Matteo", "Stefano", "Giorgio",
                 "Franco", "Mario", "Davide", "Fabio", "Roberto", "Sergio", "Claudio"]},
    "en": {"f": ["Emily", "Sarah", "Jennifer", "Emma", "Olivia", "Rachel", "Helen", "Catherine", "Laura", "Anna"],
           "m": ["James", "John", "David", "Michael", "Richard", "Thomas", "Daniel", "Robert", "William", "Peter"]},
}
LAST_NAMES = {
    "de": ["Müller", "Meier", "Schmid", "Keller", "Weber", "Huber", "Schneider", "Meyer", "Steiner", "Fischer",
           "Gerber", "Brunner", "Baumann", "Frei", "Zimmermann", "Moser", "Widmer", "Wyss", "Graf", "Roth",
           "Suter", "Bühler", "Kälin", "Hofmann", "Lüthi", "Ammann", "Bachmann", "Zürcher", "Egli", "Marti",
           "Sutter", "Küng", "Schärer", "Grob", "Rüegg"],
    "fr": ["Rochat", "Favre", "Bonvin", "Morel", "Perret", "Mottier", "Dubois", "Blanc", "Girard", "Jaquet",
           "Cuénod", "Python", "Pittet", "Chevalley", "Dupraz", "Golay", "Vuilleumier", "Rey", "Fontannaz",
           "Bérard", "Crettenand", "Savoy"],
    "it": ["Bernasconi", "Rossi", "Ferrari", "Fontana", "Bianchi", "Colombo", "Galli", "Pedrazzini", "Lombardi",
           "Rezzonico", "Gianella", "Beffa", "Cattaneo", "Quadri", "Bernardoni", "Soldati", "Gamboni", "Righetti"],
    "en": ["Smith", "Taylor", "Brown", "Wilson", "Johnson", "Walker", "Wright", "Thompson", "Evans", "Clarke"],
}
# (city, postcode, phone area code)
CITIES = {
    "de": [("Zürich", "8001", "044"), ("Zürich", "8032", "044"), ("Winterthur", "8400", "052"),
           ("Bern", "3011", "031"), ("Thun", "3600", "033"), ("Basel", "4051", "061"), ("Liestal", "4410", "061"),
           ("Luzern", "6003", "041"), ("Zug", "6300", "041"), ("St. Gallen", "9000", "071"),
           ("Frauenfeld", "8500", "052"), ("Aarau", "5000", "062"), ("Baden", "5400", "056"),
           ("Olten", "4600", "062"), ("Solothurn", "4500", "032"), ("Chur", "7000", "081"),
           ("Schaffhausen", "8200", "052"), ("Uster", "8610", "044"), ("Wil", "9500", "071")],
    "fr": [("Lausanne", "1003", "021"), ("Lausanne", "1005", "021"), ("Genève", "1204", "022"),
           ("Genève", "1201", "022"), ("Fribourg", "1700", "026"), ("Bulle", "1630", "026"),
           ("Neuchâtel", "2000", "032"), ("La Chaux-de-Fonds", "2300", "032"), ("Sion", "1950", "027"),
           ("Martigny", "1920", "027"), ("Yverdon-les-Bains", "1400", "024"), ("Vevey", "1800", "021"),
           ("Montreux", "1820", "021"), ("Nyon", "1260", "022"), ("Delémont", "2800", "032")],
    "it": [("Lugano", "6900", "091"), ("Bellinzona", "6500", "091"), ("Locarno", "6600", "091"),
           ("Mendrisio", "6850", "091"), ("Chiasso", "6830", "091"), ("Biasca", "6710", "091"),
           ("Ascona", "6612", "091")],
}
CITIES["en"] = [c for c in CITIES["de"] + CITIES["fr"] if c[0] in ("Zürich", "Basel", "Genève", "Zug", "Lausanne", "Bern")]
STREETS = {
    "de": ["Bahnhofstrasse", "Hauptstrasse", "Dorfstrasse", "Seestrasse", "Kirchgasse", "Bergstrasse",
           "Schulhausstrasse", "Poststrasse", "Lindenweg", "Gartenstrasse", "Rosenweg", "Marktgasse",
           "Zürcherstrasse", "Birkenweg", "Feldstrasse"],
    "fr": ["Rue du Lac", "Avenue de la Gare", "Rue de Lausanne", "Chemin des Vignes", "Rue du Marché",
           "Route de Berne", "Rue des Alpes", "Chemin du Stand", "Rue Centrale", "Avenue de la Poste"],
    "it": ["Via Cantonale", "Via Nassa", "Corso San Gottardo", "Via San Gottardo", "Via Pretorio", "Via Motta",
           "Via Ciseri", "Piazza Indipendenza", "Via Lavizzari", "Via Stazione"],
}
STREETS["en"] = STREETS["de"] + STREETS["fr"]

PRACTICES = {
    "de": ["Praxis am See", "Hausarztpraxis Bahnhof", "Gruppenpraxis Zentrum", "Praxis Dr. med. {last}",
           "Ärztezentrum {city}", "Gemeinschaftspraxis Lindenhof", "Praxis Weitblick", "Hausärzte {city}"],
    "fr": ["Cabinet médical du Lac", "Cabinet médical de la Gare", "Centre médical de {city}",
           "Cabinet du Dr {last}", "Cabinet de groupe des Alpes"],
    "it": ["Studio medico {last}", "Studio medico del Lago", "Centro medico {city}", "Studio medico associato"],
    "en": ["{city} Medical Practice", "International Medical Centre {city}", "Family Practice {last}"],
}
SPECIALTIES = {
    "de": {"m": ["Facharzt für Allgemeine Innere Medizin FMH", "Praktischer Arzt FMH", "Facharzt für Kardiologie FMH"],
           "f": ["Fachärztin für Allgemeine Innere Medizin FMH", "Praktische Ärztin FMH",
                 "Fachärztin für Kinder- und Jugendmedizin FMH"]},
    "fr": {"m": ["Spécialiste en médecine interne générale FMH", "Médecin praticien FMH"],
           "f": ["Spécialiste en médecine interne générale FMH", "Médecin praticienne FMH"]},
    "it": {"m": ["Specialista in medicina interna generale FMH", "Medico generico FMH"],
           "f": ["Specialista in medicina interna generale FMH", "Medico generico FMH"]},
    "en": {"m": ["General Practitioner", "Specialist in General Internal Medicine FMH"],
           "f": ["General Practitioner", "Specialist in General Internal Medicine FMH"]},
}
HOSPITALS = {
    "de": ["Kantonsspital {city}", "Spital {city}", "Universitätsspital {city}", "Regionalspital {city}"],
    "fr": ["Hôpital cantonal de {city}", "Hôpital de {city}", "Hôpital régional de {city}"],
    "it": ["Ospedale Regionale di {city}", "Ospedale Civico {city}", "Clinica {city}"],
    "en": ["{city} University Hospital", "{city} Clinic", "{city} General Hospital"],
}
DEPARTMENTS = {
    "de": ["Klinik für Innere Medizin", "Klinik für Kardiologie", "Chirurgische Klinik", "Notfallzentrum",
           "Klinik für Orthopädie", "Geriatrie"],
    "fr": ["Service de médecine interne", "Service de cardiologie", "Service de chirurgie", "Service des urgences",
           "Service de gériatrie"],
    "it": ["Servizio di medicina interna", "Servizio di cardiologia", "Servizio di chirurgia", "Pronto soccorso",
           "Servizio di geriatria"],
    "en": ["Department of Internal Medicine", "Department of Cardiology", "Department of Surgery",
           "Emergency Department"],
}
NOTES = {
    "de": ["Bitte Generikum abgeben.", "Keine Substitution.", "Kontrolle in 3 Monaten.", "Einnahme mit dem Essen.",
           "Bei Unklarheiten bitte Rücksprache.", "Patient über Nebenwirkungen informiert.", "Dauermedikation.",
           "Bitte Dosierung auf Packung vermerken."],
    "fr": ["Générique autorisé.", "Ne pas substituer.", "Contrôle dans 3 mois.", "Prendre pendant les repas.",
           "Traitement de longue durée.", "En cas de question, merci d'appeler le cabinet."],
    "it": ["Sostituzione con generico ammessa.", "Non sostituire.", "Controllo tra 3 mesi.",
           "Assumere durante i pasti.", "Terapia di lunga durata.", "Per domande contattare lo studio."],
    "en": ["Generic substitution permitted.", "Do not substitute.", "Review in 3 months.", "Take with food.",
           "Long-term medication.", "Please call the practice with any questions."],
}

# Layout labels per language.
GP_LABELS = {
    "de": {"title": ["Rezept", "Ärztliches Rezept", ""], "patient": ("Patient:", "Patientin:"),
           "dob": ("geb. {d}", "geb. {d}"), "rp": "Rp.", "date": ["{city}, {d}", "Datum: {d}"],
           "qty": ["OP {q}", "Menge: {q} {pack}", "{q} OP"], "pack": ("Packung", "Packungen"),
           "rep": ["Wiederholung: {r}x", "Rep. {r}x"], "sign": ["Unterschrift", "Stempel und Unterschrift"],
           "phone": "Tel.", "fax": "Fax", "zsr": "ZSR-Nr."},
    "fr": {"title": ["Ordonnance", "Ordonnance médicale", ""], "patient": ("Patient:", "Patiente:"),
           "dob": ("né le {d}", "née le {d}"), "rp": "Rp.", "date": ["{city}, le {d}", "Date: {d}"],
           "qty": ["Qté: {q}", "Quantité: {q} {pack}"], "pack": ("boîte", "boîtes"),
           "rep": ["renouveler {r} fois", "à renouveler {r} fois"], "sign": ["Signature", "Timbre et signature"],
           "phone": "Tél.", "fax": "Fax", "zsr": "N° RCC"},
    "it": {"title": ["Ricetta", "Ricetta medica", ""], "patient": ("Paziente:", "Paziente:"),
           "dob": ("nato il {d}", "nata il {d}"), "rp": "Rp.", "date": ["{city}, {d}", "Data: {d}"],
           "qty": ["Qtà: {q}", "Quantità: {q} {pack}"], "pack": ("confezione", "confezioni"),
           "rep": ["ripetere {r} {volte}", "da ripetere {r} {volte}"], "sign": ["Firma", "Timbro e firma"],
           "phone": "Tel.", "fax": "Fax", "zsr": "N. RCC"},
    "en": {"title": ["Prescription", ""], "patient": ("Patient:", "Patient:"),
           "dob": ("DOB {d}", "DOB {d}"), "rp": "Rx", "date": ["Date: {d}", "{city}, {d}"],
           "qty": ["Qty: {q}", "Quantity: {q} {pack}"], "pack": ("pack", "packs"),
           "rep": ["Repeats: {r}"], "sign": ["Signature", "Signature and stamp"],
           "phone": "Phone", "fax": "Fax", "zsr": "ZSR no."},
}
HOSP_LABELS = {
    "de": {"title": ["Austrittsrezept", "Rezept"], "name": "Name", "dob": "Geburtsdatum", "pid": "Patienten-Nr.",
           "date": "Datum", "cols": ("Medikament", "Stärke", "Dosierung", "Menge"), "qty": "{q} OP",
           "notes": "Bemerkungen", "doctor": ("Verordnender Arzt", "Verordnende Ärztin"), "sign": "Unterschrift",
           "page": "Seite 1/1"},
    "fr": {"title": ["Ordonnance de sortie", "Ordonnance"], "name": "Nom", "dob": "Date de naissance",
           "pid": "N° patient", "date": "Date", "cols": ("Médicament", "Dosage", "Posologie", "Quantité"),
           "qty": "{q}", "notes": "Remarques", "doctor": ("Médecin prescripteur", "Médecin prescriptrice"),
           "sign": "Signature", "page": "Page 1/1"},
    "it": {"title": ["Ricetta di dimissione", "Ricetta"], "name": "Nome", "dob": "Data di nascita",
           "pid": "N. paziente", "date": "Data", "cols": ("Farmaco", "Dosaggio", "Posologia", "Quantità"),
           "qty": "{q} conf.", "notes": "Osservazioni", "doctor": ("Medico prescrittore", "Medico prescrittore"),
           "sign": "Firma", "page": "Pagina 1/1"},
    "en": {"title": ["Discharge prescription", "Prescription"], "name": "Name", "dob": "Date of birth",
           "pid": "Patient ID", "date": "Date", "cols": ("Medication", "Strength", "Dose", "Qty"),
           "qty": "{q}", "notes": "Remarks", "doctor": ("Prescriber", "Prescriber"), "sign": "Signature",
           "page": "Page 1/1"},
}
EMP_LABELS = {
    "de": {"sub": "Der Schweizer Medikationsplan", "by": "erstellt von :", "issued": "Ausstellungsdatum:",
           "cols": ("Medikament", "Morgen", "Mittag", "Abend", "Nacht", "Einheit", "Von", "Bis u. mit",
                    "Anwendungsinstruktion", "Anwendungsgrund", "Verordnet durch"),
           "remark": "Bemerkung:", "page": "Seite 1 von 1", "sex": ("M", "W"),
           "hw": "Körpergrösse / Gewicht:", "renal": "Niereninsuffizienz:", "allergy": "Allergie(n):",
           "renal_v": ["keine", "leicht", "mittel"], "allergy_v": ["keine bekannt", "Penicillin-Allergie",
                                                                    "Sulfonamide", "Latex", "Pollen"]},
    "fr": {"sub": "Le plan de médication suisse", "by": "établi par :", "issued": "Date d'émission:",
           "cols": ("Médicament", "Matin", "Midi", "Soir", "Nuit", "Unité", "Du", "Jusqu'au",
                    "Instructions d'utilisation", "Motif du traitement", "Prescrit par"),
           "remark": "Remarque:", "page": "Page 1 de 1", "sex": ("M", "F"),
           "hw": "Taille / Poids:", "renal": "Insuffisance rénale:", "allergy": "Allergie(s):",
           "renal_v": ["aucune", "légère", "modérée"], "allergy_v": ["aucune connue", "allergie à la pénicilline",
                                                                      "sulfamidés", "latex", "pollen"]},
    "it": {"sub": "Il piano farmacologico svizzero", "by": "allestito da :", "issued": "Data di emissione:",
           "cols": ("Medicamento", "Mattino", "Mezzogiorno", "Sera", "Notte", "Unità", "Dal", "Fino al",
                    "Istruzioni d'uso", "Motivo del trattamento", "Prescritto da"),
           "remark": "Osservazione:", "page": "Pagina 1 di 1", "sex": ("M", "F"),
           "hw": "Altezza / Peso:", "renal": "Insufficienza renale:", "allergy": "Allergia(e):",
           "renal_v": ["nessuna", "lieve", "moderata"], "allergy_v": ["nessuna nota", "allergia alla penicillina",
                                                                       "sulfamidici", "lattice", "polline"]},
}
EMP_INSTR = {
    "de": ["nach dem Essen", "vor dem Essen", "mit viel Wasser einnehmen", "unzerkaut schlucken", "zum Essen"],
    "fr": ["après le repas", "avant le repas", "avec un grand verre d'eau", "avaler sans croquer", "pendant le repas"],
    "it": ["dopo i pasti", "prima dei pasti", "con molta acqua", "deglutire senza masticare", "durante i pasti"],
}
# eMediplan "Anwendungsgrund" by ATC prefix (longest prefix wins).
REASONS = {
    "A10": ("Diabetes", "Diabète", "Diabete"), "C09": ("Bluthochdruck", "Hypertension", "Ipertensione"),
    "C08": ("Bluthochdruck", "Hypertension", "Ipertensione"), "C07": ("Bluthochdruck", "Hypertension", "Ipertensione"),
    "C03": ("Bluthochdruck", "Hypertension", "Ipertensione"), "C10": ("Cholesterinsenker", "Cholestérol", "Colesterolo"),
    "B01": ("Blutverdünnung", "Anticoagulation", "Anticoagulazione"),
    "A02": ("Magenschutz", "Protection gastrique", "Protezione gastrica"),
    "N02": ("Schmerzen", "Douleurs", "Dolori"), "M01": ("Schmerzen", "Douleurs", "Dolori"),
    "J0": ("Infektion", "Infection", "Infezione"), "P01": ("Infektion", "Infection", "Infezione"),
    "N06A": ("Depression", "Dépression", "Depressione"), "N05C": ("Schlafstörung", "Troubles du sommeil", "Insonnia"),
    "N05B": ("Angst", "Anxiété", "Ansia"), "R03": ("Asthma", "Asthme", "Asma"),
    "R06": ("Allergie", "Allergie", "Allergia"), "R01": ("Heuschnupfen", "Rhume des foins", "Raffreddore da fieno"),
    "H03": ("Schilddrüse", "Thyroïde", "Tiroide"), "H02": ("Entzündung", "Inflammation", "Infiammazione"),
    "A06": ("Verstopfung", "Constipation", "Stitichezza"), "A03": ("Übelkeit", "Nausées", "Nausea"),
    "A04": ("Übelkeit", "Nausées", "Nausea"), "N03": ("Epilepsie", "Épilepsie", "Epilessia"),
    "C01A": ("Herzinsuffizienz", "Insuffisance cardiaque", "Insufficienza cardiaca"),
    "C01B": ("Vorhofflimmern", "Fibrillation auriculaire", "Fibrillazione atriale"),
    "C01D": ("Angina pectoris", "Angine de poitrine", "Angina pectoris"),
    "S01E": ("Glaukom", "Glaucome", "Glaucoma"), "S01A": ("Bindehautentzündung", "Conjonctivite", "Congiuntivite"),
    "D0": ("Ekzem", "Eczéma", "Eczema"),
}
EMP_VENDORS = ["Softwarehersteller AG", "MediSoft AG", "Praxis-IT GmbH", "HealthDoc SA", "Medisys AG"]

LAYOUTS = ("gp_letterhead", "hospital", "emediplan")
LANG_WEIGHTS = {"gp_letterhead": (("de", 50), ("fr", 22), ("it", 13), ("en", 15)),
                "hospital": (("de", 50), ("fr", 22), ("it", 13), ("en", 15)),
                "emediplan": (("de", 60), ("fr", 25), ("it", 15))}

# --------------------------------------------------------------------------
# Fonts
# --------------------------------------------------------------------------
FONT_DIR = Path("/usr/share/fonts/truetype")
FAMILIES = {  # regular, bold, italic
    "DejaVu Sans": ("dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf", "dejavu/DejaVuSans-Oblique.ttf"),
    "DejaVu Sans Condensed": ("dejavu/DejaVuSansCondensed.ttf", "dejavu/DejaVuSansCondensed-Bold.ttf",
                              "dejavu/DejaVuSansCondensed-Oblique.ttf"),
    "Liberation Sans": ("liberation2/LiberationSans-Regular.ttf", "liberation2/LiberationSans-Bold.ttf",
                        "liberation2/LiberationSans-Italic.ttf"),
    "FreeSans": ("freefont/FreeSans.ttf", "freefont/FreeSansBold.ttf", "freefont/FreeSansOblique.ttf"),
    "DejaVu Serif": ("dejavu/DejaVuSerif.ttf", "dejavu/DejaVuSerif-Bold.ttf", "dejavu/DejaVuSerif-Italic.ttf"),
    "Liberation Serif": ("liberation2/LiberationSerif-Regular.ttf", "liberation2/LiberationSerif-Bold.ttf",
                         "liberation2/LiberationSerif-Italic.ttf"),
    "FreeSerif": ("freefont/FreeSerif.ttf", "freefont/FreeSerifBold.ttf", "freefont/FreeSerifItalic.ttf"),
    "Liberation Mono": ("liberation2/LiberationMono-Regular.ttf", "liberation2/LiberationMono-Bold.ttf",
                        "liberation2/LiberationMono-Italic.ttf"),
    "DejaVu Sans Mono": ("dejavu/DejaVuSansMono.ttf", "dejavu/DejaVuSansMono-Bold.ttf",
                         "dejavu/DejaVuSansMono-Oblique.ttf"),
    "FreeMono": ("freefont/FreeMono.ttf", "freefont/FreeMonoBold.ttf", "freefont/FreeMonoOblique.ttf"),
}
SANS = ["DejaVu Sans", "Liberation Sans", "FreeSans", "DejaVu Sans Condensed"]
SERIF = ["DejaVu Serif", "Liberation Serif", "FreeSerif"]
MONO = ["Liberation Mono", "DejaVu Sans Mono", "FreeMono"]
MIN_PX = 9  # below this a shrunk glyph is unreadable even on a clean page


@lru_cache(maxsize=None)
def load_font(path, px):
    return ImageFont.truetype(str(FONT_DIR / path), px)


class Fonts:
    """One family at one dpi; fonts are asked for in points."""

    def __init__(self, family, dpi):
        self.paths, self.dpi = FAMILIES[family], dpi

    def __call__(self, pt, style="r"):
        return load_font(self.paths["rbi".index(style)], max(MIN_PX, round(pt * self.dpi / 72)))


def smaller(font, factor=0.93):
    # font.path is absolute; FONT_DIR / absolute path is that path
    return load_font(font.path, max(MIN_PX, int(font.size * factor)))


def line_h(font, spacing=1.18):
    return round(font.size * spacing)


class Overflow(Exception):
    """Text would leave its box or the page: the layout is retried or fixed."""


# --------------------------------------------------------------------------
# Page: draws text, logs it in reading order, and refuses to overflow.
# --------------------------------------------------------------------------
class Page:
    def __init__(self, size_mm, dpi, paper, ink):
        self.dpi = dpi
        self.W, self.H = round(size_mm[0] / 25.4 * dpi), round(size_mm[1] / 25.4 * dpi)
        self.img = Image.new("RGB", (self.W, self.H), paper)
        self.d = ImageDraw.Draw(self.img)
        self.ink = ink
        self.lines = []

    def mm(self, v):
        return round(v * self.dpi / 25.4)

    def log(self, s, cont=False):
        s = " ".join(s.split())
        if not s:
            return
        if cont and self.lines:
            self.lines[-1] += " " + s
        else:
            self.lines.append(s)

    def fit(self, s, font, max_w):
        """Shrink the font until s fits max_w (the only way a single line can fit)."""
        while font.getlength(s) > max_w:
            if font.size <= MIN_PX:
                raise Overflow(f"{s!r} does not fit {max_w}px")
            font = smaller(font)
        return font

    def text(self, x, y, s, font, *, anchor="la", fill=None, cont=False, max_w=None, box=None, log=True):
        if max_w is not None:
            font = self.fit(s, font, max_w)
        bb = self.d.textbbox((x, y), s, font=font, anchor=anchor)
        bx = box or (0, 0, self.W, self.H)
        if bb[0] < bx[0] or bb[1] < bx[1] or bb[2] > bx[2] or bb[3] > bx[3]:
            raise Overflow(f"{s!r} at {bb} outside {bx}")
        self.d.text((x, y), s, font=font, anchor=anchor, fill=fill or self.ink)
        if log:
            self.log(s, cont)
        return bb, font

    def hline(self, x0, x1, y, width, fill=None):
        self.d.line([(x0, y), (x1, y)], fill=fill or self.ink, width=width)

    def wrap(self, s, font, width):
        """Greedy word wrap; shrinks the font first if one word is wider than the box."""
        words = s.split()
        while words and max(font.getlength(w) for w in words) > width:
            if font.size <= MIN_PX:
                raise Overflow(f"word in {s!r} wider than {width}px")
            font = smaller(font)
        lines, cur = [], ""
        for w in words:
            t = f"{cur} {w}" if cur else w
            if cur and font.getlength(t) > width:
                lines.append(cur)
                cur = w
            else:
                cur = t
        if cur:
            lines.append(cur)
        return lines, font

    def row(self, x, y, widths, cells, *, pad, min_h=0, fill=None, align="l", valign="m",
            line_w=2, line_fill=None, grid=True, log=True):
        """One ruled table row. A cell is a list of (text, font) paragraphs and/or
        callables f(page, box) for graphics. Returns the row height."""
        aligns = align if isinstance(align, (list, tuple)) else [align] * len(widths)
        laid, text_h = [], []
        for w, cell in zip(widths, cells):
            paras, h = [], 0
            for p in cell:
                if callable(p):
                    paras.append(p)
                    continue
                s, f = p
                lines, f = self.wrap(s, f, w - 2 * pad)
                paras.append((lines, f))
                h += len(lines) * line_h(f)
            laid.append(paras)
            text_h.append(h)
        rh = max([min_h] + [h + 2 * pad for h in text_h])
        if y + rh > self.H:
            raise Overflow("row below page")
        if fill:
            self.d.rectangle([x, y, x + sum(widths), y + rh], fill=fill)
        texts, cx = [], x
        for w, paras, th, al in zip(widths, laid, text_h, aligns):
            box = (cx, y, cx + w, y + rh)
            ty = y + pad if valign == "t" else y + (rh - th) // 2
            parts = []
            for p in paras:
                if callable(p):
                    p(self, box)
                    continue
                lines, f = p
                for ln in lines:
                    tx, anc = (cx + pad, "la") if al == "l" else (cx + w // 2, "ma")
                    self.text(tx, ty, ln, f, anchor=anc, box=box, log=False)
                    ty += line_h(f)
                    parts.append(ln)
            texts.append(" ".join(parts))
            if grid:
                self.d.rectangle([cx, y, cx + w, y + rh], outline=line_fill or self.ink, width=line_w)
            cx += w
        if log:
            self.log(" ".join(t for t in texts if t))
        return rh


# --------------------------------------------------------------------------
# Graphics (not text)
# --------------------------------------------------------------------------
def scribble(rng, color):
    """A handwritten-looking signature drawer for a box."""
    k = [(rng.uniform(1.5, 4.5), rng.uniform(0, 6.3), rng.uniform(0.15, 0.4)) for _ in range(3)]
    loops = rng.randint(3, 6)

    def draw(pg, box):
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        pts = []
        for i in range(160):
            t = i / 159
            yy = sum(a * math.sin(f * t * 6.28 + ph) for f, ph, a in k) + 0.5 * math.sin(loops * 6.28 * t)
            pts.append((x0 + w * (0.05 + 0.8 * t + 0.05 * math.sin(loops * 6.28 * t)),
                        y0 + h * (0.5 + 0.35 * max(-1, min(1, yy)))))
        pg.d.line(pts, fill=color, width=max(2, pg.mm(0.4)), joint="curve")
    return draw


def pill(rng):
    color = rng.choice([(235, 235, 230), (215, 215, 215), (150, 60, 50), (240, 225, 160), (240, 200, 205),
                        (200, 220, 240)])
    scored = rng.random() < 0.4

    def draw(pg, box):
        x0, y0, x1, y1 = box
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        w, h = min((x1 - x0) * 0.35, pg.mm(6)), pg.mm(2.6)
        outline = tuple(max(0, c - 50) for c in color)
        pg.d.ellipse([cx - w, cy - h, cx + w, cy + h], fill=color, outline=outline, width=2)
        pg.d.ellipse([cx - w * 0.6, cy - h * 0.7, cx + w * 0.2, cy - h * 0.2], fill=tuple(min(255, c + 15) for c in color))
        if scored:
            pg.d.line([(cx, cy - h + 3), (cx, cy + h - 3)], fill=outline, width=2)
    return draw


def fake_qr(rng, px):
    """A QR-looking block (finder patterns + random modules); it encodes nothing."""
    n = 41
    a = np.array([[rng.random() < 0.5 for _ in range(n)] for _ in range(n)], dtype=bool)
    for oy, ox in ((0, 0), (0, n - 7), (n - 7, 0)):
        a[max(0, oy - 1):oy + 8, max(0, ox - 1):ox + 8] = False
        a[oy:oy + 7, ox:ox + 7] = True
        a[oy + 1:oy + 6, ox + 1:ox + 6] = False
        a[oy + 2:oy + 5, ox + 2:ox + 5] = True
    return Image.fromarray(np.where(a, 20, 255).astype(np.uint8)).resize((px, px), Image.NEAREST).convert("RGB")


# --------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------
def is_plain_variant(v):
    return 4 <= len(v) <= 24 and re.fullmatch(r"[^\W\d_](?:[^\W\d_]| |-)*[^\W\d_]", v) is not None


def load_vocab():
    with open(CATALOG, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["ingredients"] not in NON_DAILY]
    brands, warn = defaultdict(list), None
    generics = {r["ingredients"] for r in rows if ";" not in r["ingredients"]}
    if DRUG_NAMES.is_file():
        with open(DRUG_NAMES, newline="", encoding="utf-8") as f:
            for rec in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                v, c = rec["variant"].strip(), rec["canonical"].strip().lower()
                if (c in generics and rec["is_brand"].strip().lower() in ("true", "1", "yes", "y", "t")
                        and is_plain_variant(v) and c not in v.lower()
                        and not any(s in v.lower() for s in BRAND_STOP)):
                    brands[c].append(v)
        brands = {c: sorted(set(vs)) for c, vs in brands.items()}
    else:
        warn = f"warning: {DRUG_NAMES} not found; printing catalog names only (no brand variants)"
    return {"rows": rows, "brands": dict(brands), "warning": warn}


def brand_case(v):
    return " ".join(w.upper() if w.lower() in ("xl", "sr", "mr", "cr", "la", "xr") else w.title() for w in v.split())


def base_name(row):
    """Catalog name without strength/form: 'Lantus 100 U/ml' -> 'Lantus'."""
    name = row["name"].split(row["strength"])[0].strip().rstrip(",")
    return name.replace(" And ", " and ")


def unit_kind(form, strength):
    if "tablet" in form:
        return "tab"
    if "capsule" in form:
        return "cap"
    if "U/ml" in strength:
        return "iu"
    if form.startswith(("pen", "prefilled")):
        return "inj"
    for key, kind in (("inhaler", "puff"), ("spray", "spray"), ("eye drops", "drop"), ("cream", "apply"),
                      ("sachet", "sachet"), ("syrup", "ml")):
        if key in form:
            return kind
    return "tab"


def printed_form(rng, form, lang):
    m = re.fullmatch(r"(.*?) (\d+(?:\.\d+)? (?:ml|g))", form)
    base, size = (m.group(1), m.group(2)) if m else (form, "")
    names = FORM_NAMES.get(base, {}).get(lang) or [base]
    return f"{rng.choice(names)} {size}".strip()


# --------------------------------------------------------------------------
# Doses and sigs
# --------------------------------------------------------------------------
def fmt_amt(a):
    return "½" if a == 0.5 else f"{a:g}"


def canon(dose):
    return "-".join(f"{a:g}" for a in dose)


def wchoice(rng, pairs):
    return rng.choices([p for p, _ in pairs], [w for _, w in pairs])[0]


def daily_mg_ok(row, dose):
    """Keep within the catalog's max_daily_mg (first number of combo strengths)."""
    m = re.fullmatch(r"([\d.]+)(?:/[\d.]+)? (mg|mcg|g)", row["strength"])
    if not row.get("max_daily_mg") or not m:
        return True
    per = float(m.group(1)) * {"mg": 1, "mcg": 0.001, "g": 1000}[m.group(2)]
    return sum(dose) * per <= float(row["max_daily_mg"])


def make_dose(rng, kind, row):
    for _ in range(50):
        dose = _draw_dose(rng, kind, row["ingredients"])
        if kind not in ("tab", "cap", "sachet") or daily_mg_ok(row, dose):
            return dose
    return (0.5, 0, 0, 0) if kind == "tab" else (1, 0, 0, 0)


def _draw_dose(rng, kind, generic):
    if kind == "iu":
        if generic in BASAL_INSULINS:
            return (0, 0, rng.choice([8, 10, 12, 14, 16, 20, 24]), 0) if rng.random() < 0.7 else \
                (rng.choice([8, 10, 12, 16, 20]), 0, 0, 0)
        return tuple(rng.choice([4, 6, 8, 10]) for _ in range(3)) + (0,)  # rapid insulin with meals
    if kind == "apply":
        return wchoice(rng, [((1, 0, 1, 0), 5), ((1, 0, 0, 0), 2), ((0, 0, 1, 0), 2), ((1, 1, 1, 0), 1)])
    pattern = wchoice(rng, DOSE_PATTERNS)
    amount = {"tab": lambda: wchoice(rng, [(1, 70), (0.5, 12), (2, 18)]),
              "cap": lambda: wchoice(rng, [(1, 80), (2, 20)]),
              "ml": lambda: rng.choice([5, 10, 15, 20]),
              "puff": lambda: rng.choice([1, 2]), "spray": lambda: rng.choice([1, 2]),
              "drop": lambda: rng.choice([1, 2]), "sachet": lambda: rng.choice([1, 1, 2])}.get(kind, lambda: 1)
    a = amount()
    dose = [a * p for p in pattern]
    if kind == "tab" and a in (1, 0.5) and sum(pattern) >= 2 and rng.random() < 0.15:  # uneven: 1-0-½-0
        i = max(i for i, p in enumerate(pattern) if p)
        dose[i] = 1.5 - a
    return tuple(dose)


def unit_word(lang, kind, a):
    sing, plur, _ = UNITS[kind][lang]
    return sing if a <= 1 else plur


def join_and(parts, word):
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + f" {word} " + parts[-1]


def make_sig(rng, lang, kind, dose):
    v = SIG_VOCAB[lang]
    nz = [i for i, a in enumerate(dose) if a]
    uniform = len({dose[i] for i in nz}) == 1
    shape = tuple(1 if a else 0 for a in dose)
    styles = [("schema", 4), ("time", 3)]
    if uniform and (len(nz) == 1 or shape in FREQ_SLOTS.values()):
        styles.append(("freq", 5))
    style = wchoice(rng, styles)
    a = dose[nz[0]]
    if style == "schema":
        s = rng.choice(v["schema"]).format(d="-".join(fmt_amt(x) for x in dose))
        if kind in ("iu", "ml", "puff", "spray", "drop"):  # numbers alone would not say what they count
            s += " " + UNITS[kind][lang][1]
        return s
    if kind == "apply":
        if style == "freq":
            tpl = v["apply"][1] if len(nz) == 1 else v["apply"][0]
            return tpl.format(freq=v["freq"][len(nz)], slot=v["slot"][nz[0]])
        return v["apply"][2].format(slots=join_and([v["slot"][i] for i in nz], v["and"]))
    if style == "freq":
        tpl = rng.choice(v["once_tpl"] if len(nz) == 1 else v["freq_tpl"])
        return tpl.format(freq=v["freq"][len(nz)], a=fmt_amt(a), u=unit_word(lang, kind, a), slot=v["slot"][nz[0]])
    # time words; the unit is optional except where a bare number would be unclear
    with_unit = kind not in ("tab", "cap") or rng.random() < 0.5
    parts = []
    for k, i in enumerate(nz):
        u = unit_word(lang, kind, dose[i]) if (with_unit and (k == 0 or kind in ("iu", "ml"))) else ""
        parts.append(" ".join(v["time_tpl"].format(a=fmt_amt(dose[i]), u=u, slot=v["slot"][i]).split()))
    return join_and(parts, v["and"])


_NUM = r"(?:\d+(?:\.\d+)?|½)"
_AMT = re.compile(r"(?<![\w.,/-])(" + _NUM + r")(?![\w/-])")
_SCHEMA = re.compile(r"(?<![\w-])(" + _NUM + r")-(" + _NUM + r")-(" + _NUM + r")-(" + _NUM + r")(?![\w-])")


def _num(s):
    return 0.5 if s == "½" else float(s)


def parse_sig(sig, lang):
    """Inverse of make_sig over SIG_VOCAB: the dose a sig says, or None if unclear."""
    m = _SCHEMA.search(sig)
    if m:
        return tuple(_num(g) for g in m.groups())
    v = SIG_VOCAB[lang]
    found = [n for n, p in v["freq"].items() if p in sig]
    if len(found) > 1:
        return None
    slots = [(sig.find(w), i, w) for i, w in enumerate(v["slot"]) if w in sig]
    if found:
        n = found[0]
        rest = sig.replace(v["freq"][n], " ")
        amts = _AMT.findall(rest)
        if len(amts) > 1:
            return None
        a = _num(amts[0]) if amts else 1.0
        if n == 1:
            if len(slots) != 1:
                return None
            return tuple(a if i == slots[0][1] else 0.0 for i in range(4))
        return tuple(a * p for p in FREQ_SLOTS[n])
    if not slots:
        return None
    dose, prev = [0.0] * 4, 0
    for pos, i, w in sorted(slots):
        amts = _AMT.findall(sig[prev:pos])
        dose[i] = _num(amts[-1]) if amts else 1.0
        prev = pos + len(w)
    return tuple(dose)


def parse_cells(sig):
    return tuple(0.0 if c == "-" else _num(c) for c in sig.split(" "))


# --------------------------------------------------------------------------
# Document content
# --------------------------------------------------------------------------
def person(rng, lang, sex=None):
    sex = sex or rng.choice("fm")
    pool = lang if lang != "en" else rng.choice(["en", "en", "de", "fr"])
    return {"first": rng.choice(FIRST_NAMES[pool][sex]), "last": rng.choice(LAST_NAMES[pool]), "sex": sex}


def gln(rng):
    body = "7601000" + "".join(str(rng.randint(0, 9)) for _ in range(5))
    s = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body))  # GS1 mod-10
    return body + str((10 - s % 10) % 10)


def phone(rng, area, intl=False):
    num = f"{rng.randint(200, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
    return f"+41 {area[1:]} {num}" if intl else f"{area} {num}"


def fmt_date(d, lang, en_style):
    if lang == "en":
        return d.isoformat() if en_style == "iso" else d.strftime("%d/%m/%Y")
    return d.strftime("%d.%m.%Y")


def doctor_name(rng, lang, p, initial=False):
    first = p["first"][0] + "." if initial else p["first"]
    title = {"de": "Dr. med.", "fr": "Dr méd." if p["sex"] == "m" else rng.choice(["Dr méd.", "Dre méd."]),
             "it": rng.choice(["Dr. med.", "Dott.ssa" if p["sex"] == "f" else "Dott."]),
             "en": rng.choice(["Dr.", "Dr. med."])}[lang]
    return f"{title} {first} {p['last']}"


def pick_items(rng, vocab, lang, n, layout):
    rows, used, items = vocab["rows"], set(), []
    while len(items) < n:
        r = rng.choice(rows)
        if r["ingredients"] in used:
            continue
        used.add(r["ingredients"])
        generic = r["ingredients"]
        name = base_name(r)
        brands = vocab["brands"].get(generic)
        if brands and ";" not in generic and rng.random() < BRAND_P:
            name = brand_case(rng.choice(brands))
        if layout == "emediplan" and rng.random() < 0.5:
            name = name.upper()  # as eMediplan software often prints product names
        kind = unit_kind(r["form"], r["strength"])
        dose = make_dose(rng, kind, r)
        if layout == "emediplan":
            sig = " ".join(fmt_amt(a) if a else "-" for a in dose)
            ok = parse_cells(sig) == dose
        else:
            sig = make_sig(rng, lang, kind, dose)
            ok = parse_sig(sig, lang) == dose
        if not ok:
            raise AssertionError(f"sig {sig!r} ({lang}) does not map back to {dose}")
        items.append({
            "name": name, "generic": generic, "catalog_gtin": r["gtin"], "strength": r["strength"],
            "form": printed_form(rng, r["form"], lang), "dose": canon(dose), "sig": sig,
            "quantity": None if layout == "emediplan" else wchoice(rng, [(1, 70), (2, 22), (3, 8)]),
            "repeats": wchoice(rng, [(0, 70), (1, 15), (2, 8), (3, 7)]) if layout == "gp_letterhead" else 0,
            "_kind": kind, "_atc": r["atc"], "_dose": dose,
        })
    return items


def make_doc(idx, seed, vocab):
    rng = random.Random(f"content:{seed}:{idx}")
    layout = LAYOUTS[idx % len(LAYOUTS)]
    lang = wchoice(rng, LANG_WEIGHTS[layout])
    issued = date(2025, 1, 1) + timedelta(days=rng.randrange(730))
    born = date(1935, 1, 1) + timedelta(days=rng.randrange(365 * 73))
    city = rng.choice(CITIES[lang])
    n = {"gp_letterhead": rng.choice([1, 1, 2, 2, 2, 3, 3, 4]),
         "hospital": rng.choice([2, 3, 3, 4, 4, 5, 6]),
         "emediplan": rng.choice([2, 3, 3, 4, 4, 5])}[layout]
    return {
        "idx": idx, "id": f"{idx:04d}", "layout": layout, "lang": lang, "rng": rng,
        "patient": person(rng, lang), "doctor": person(rng, lang), "born": born, "issued": issued,
        "city": city, "en_style": rng.choice(["dmy", "iso"]),
        "items": pick_items(rng, vocab, lang, n, layout),
        "note": rng.choice(NOTES[lang]) if rng.random() < 0.45 else "",
    }


# --------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------
A4, A5 = (210, 297), (148, 210)
ACCENTS = [(20, 50, 110), (20, 80, 60), (110, 25, 35), (30, 30, 30), (0, 70, 120)]
PAPERS = [(255, 255, 255), (252, 251, 247), (249, 248, 242), (246, 246, 244)]


def new_page(rng, size, dpi):
    g = rng.randint(0, 45)
    return Page(size, dpi, rng.choice(PAPERS), (g, g, g + rng.randint(0, 8)))


def render_gp(doc, size):
    rng, lang = doc["rng"], doc["lang"]
    L = GP_LABELS[lang]
    dpi = rng.choice([200, 240, 300]) if size == A5 else rng.choice([200, 220, 250])
    pg = new_page(rng, size, dpi)
    F = Fonts(rng.choice(SERIF * 2 + SANS * 2 + MONO), dpi)
    FH = Fonts(rng.choice(SERIF + SANS), dpi) if rng.random() < 0.6 else F
    accent = rng.choice(ACCENTS)
    body = rng.uniform(10, 11.5) if size == A4 else rng.uniform(9.5, 10.5)
    margin = pg.mm(rng.uniform(13, 17))
    x0, x1 = margin, pg.W - margin
    width = x1 - x0
    dr, pat = doc["doctor"], doc["patient"]
    city, plz, area = doc["city"]
    dname = doctor_name(rng, lang, dr)
    prescriber_gln = gln(rng) if rng.random() < 0.6 else None
    d = lambda day: fmt_date(day, lang, doc["en_style"])

    # Letterhead: one column (left, centred or right aligned) so reading order is plain.
    align = rng.choice(["l", "l", "c", "r"])
    ax, anc = {"l": (x0, "la"), "c": (pg.W // 2, "ma"), "r": (x1, "ra")}[align]
    head = [(rng.choice(PRACTICES[lang]).format(last=dr["last"], city=city), FH(body + 5, "b"), accent),
            (dname, FH(body + 2, "b"), None),
            (rng.choice(SPECIALTIES[lang][dr["sex"]]), F(body - 1.5), None),
            (f"{rng.choice(STREETS[lang])} {rng.randint(1, 80)}, {plz} {city}", F(body - 1), None)]
    tel = f"{L['phone']} {phone(rng, area, lang == 'en')}"
    if rng.random() < 0.5:
        tel += f" · {L['fax']} {phone(rng, area, lang == 'en')}"
    head.append((tel, F(body - 1), None))
    if rng.random() < 0.3:
        mail = f"{dr['first'][0]}.{dr['last']}@hin.ch".lower()
        head.append((mail.translate(str.maketrans("äöüéèàç", "aoueeac")), F(body - 1), None))
    ids = []
    if prescriber_gln:
        ids.append(f"GLN {prescriber_gln}")
    if rng.random() < 0.3:
        ids.append(f"{L['zsr']} {rng.choice('ABCDEFGHKLMNPRSTYZ')}{rng.randint(100000, 999999)}")
    if ids:
        head.append(("  ".join(ids), F(body - 1.5), None))
    y = margin
    for s, f, col in head:
        _, f = pg.text(ax, y, s, f, anchor=anc, fill=col, max_w=width)
        y += line_h(f, 1.25)
    y += pg.mm(2)
    pg.hline(x0, x1, y, max(2, pg.mm(0.4)), accent)
    y += pg.mm(rng.uniform(7, 11))

    title = rng.choice(L["title"])
    if title:
        _, f = pg.text(x0, y, title, FH(body + 5, "b"), max_w=width)
        y += line_h(f, 1.6)
    fb = F(body)
    lab = L["patient"][pat["sex"] == "f"]
    dob = L["dob"][pat["sex"] == "f"].format(d=d(doc["born"]))
    pname = f"{pat['first']} {pat['last']}"
    bb, _ = pg.text(x0, y, lab, F(body, "b"))
    if rng.random() < 0.5:
        pg.text(bb[2] + pg.mm(2), y, f"{pname}, {dob}", fb, cont=True, max_w=x1 - bb[2] - pg.mm(2))
        y += line_h(fb, 1.35)
    else:
        pg.text(bb[2] + pg.mm(2), y, pname, fb, cont=True)
        y += line_h(fb, 1.35)
        pg.text(bb[2] + pg.mm(2), y, dob, fb)
        y += line_h(fb, 1.35)
    if rng.random() < 0.5:
        pc = rng.choice(CITIES[lang])
        pg.text(bb[2] + pg.mm(2), y, f"{rng.choice(STREETS[lang])} {rng.randint(1, 120)}, {pc[1]} {pc[0]}", fb,
                max_w=x1 - bb[2] - pg.mm(2))
        y += line_h(fb, 1.35)
    y += pg.mm(4)
    when = rng.choice(L["date"]).format(city=city, d=d(doc["issued"]))
    if when.startswith(city):
        pg.text(x1, y, when, fb, anchor="ra")
    else:
        pg.text(x0, y, when, fb)
    y += line_h(fb, 1.3) + pg.mm(6)

    _, f = pg.text(x0, y, L["rp"], F(body + 3, "b"))
    y += line_h(f, 1.5)
    ind = x0 + pg.mm(rng.uniform(4, 9))
    for it in doc["items"]:
        _, f = pg.text(ind, y, f"{it['name']} {it['strength']} {it['form']}", F(body + 0.5, "b"), max_w=x1 - ind)
        y += line_h(f, 1.3)
        _, f = pg.text(ind, y, it["sig"], fb, max_w=x1 - ind)
        y += line_h(f, 1.3)
        q = rng.choice(L["qty"]).format(q=it["quantity"], pack=L["pack"][it["quantity"] > 1])
        if it["repeats"]:
            rep = rng.choice(L["rep"]).format(r=it["repeats"], volte="volta" if it["repeats"] == 1 else "volte")
            if rng.random() < 0.5:
                q = f"{q}, {rep}"
            else:
                pg.text(ind, y, q, fb, max_w=x1 - ind)
                y += line_h(fb, 1.3)
                q = rep
        pg.text(ind, y, q, fb, max_w=x1 - ind)
        y += line_h(fb, 1.3) + pg.mm(rng.uniform(4, 7))
    if doc["note"]:
        y += pg.mm(2)
        _, f = pg.text(x0, y, doc["note"], F(body, "i"), max_w=width)
        y += line_h(f, 1.3)

    # Signature near the bottom: a scribble over a rule, the label underneath.
    sw = pg.mm(62)
    sig_top = max(y + pg.mm(6), pg.H - margin - pg.mm(32))
    if sig_top + pg.mm(30) > pg.H - pg.mm(6):
        raise Overflow("no room for the signature")
    sx = x1 - sw if rng.random() < 0.7 else x0
    scribble(rng, rng.choice([(25, 45, 140), (20, 20, 30)]))(pg, (sx, sig_top, sx + sw, sig_top + pg.mm(17)))
    pg.hline(sx, sx + sw, sig_top + pg.mm(18), 2)
    fs = F(body - 2)
    pg.text(sx + sw // 2, sig_top + pg.mm(19.5), rng.choice(L["sign"]), fs, anchor="ma")
    return pg, {"name": dname, "gln": prescriber_gln}


def hospital_logo(rng, color):
    def draw(pg, box):
        x0, y0, x1, y1 = box
        pg.d.rounded_rectangle(box, radius=(x1 - x0) // 6, fill=color)
        cx, cy, a, b = (x0 + x1) // 2, (y0 + y1) // 2, (x1 - x0) // 3, (x1 - x0) // 10
        pg.d.rectangle([cx - a, cy - b, cx + a, cy + b], fill="white")
        pg.d.rectangle([cx - b, cy - a, cx + b, cy + a], fill="white")
    return draw


def render_hospital(doc):
    rng, lang = doc["rng"], doc["lang"]
    L = HOSP_LABELS[lang]
    dpi = rng.choice([200, 220, 250])
    pg = new_page(rng, A4, dpi)
    F = Fonts(rng.choice(SANS * 3 + MONO), dpi)
    body = rng.uniform(9.5, 11)
    accent = rng.choice(ACCENTS)
    margin = pg.mm(rng.uniform(14, 18))
    x0, x1 = margin, pg.W - margin
    width = x1 - x0
    city, plz, area = doc["city"]
    dr, pat = doc["doctor"], doc["patient"]
    d = lambda day: fmt_date(day, lang, doc["en_style"])
    hosp = rng.choice(HOSPITALS[lang]).format(city=city)
    street = f"{rng.choice(STREETS[lang])} {rng.randint(1, 60)}, {plz} {city}"

    y = margin
    logo = pg.mm(16)
    hospital_logo(rng, accent)(pg, (x0, y, x0 + logo, y + logo))
    tx = x0 + logo + pg.mm(5)
    _, f = pg.text(tx, y, hosp, F(body + 6, "b"), fill=accent, max_w=x1 - tx)
    y += line_h(f, 1.2)
    _, f = pg.text(tx, y, rng.choice(DEPARTMENTS[lang]), F(body + 1), max_w=x1 - tx)
    y += line_h(f, 1.25)
    _, f = pg.text(tx, y, f"{street} · {'Tel.' if lang != 'en' else 'Phone'} {phone(rng, area, lang == 'en')}",
                   F(body - 2), max_w=x1 - tx)
    y = max(y + line_h(f, 1.25), margin + logo) + pg.mm(4)
    pg.hline(x0, x1, y, max(2, pg.mm(0.5)), accent)
    y += pg.mm(8)
    _, f = pg.text(x0, y, rng.choice(L["title"]), F(body + 5, "b"), max_w=width)
    y += line_h(f, 1.5)

    lw = max(2, pg.mm(0.25))
    pad = pg.mm(2)
    small, val = F(body - 2.5), F(body + 0.5)
    grey = (95, 95, 95)

    def field(label, value):
        return [(label, small), (value, val)]

    half = [width // 2, width - width // 2]
    pname = f"{pat['first']} {pat['last']}"
    y += pg.row(x0, y, half, [field(L["name"], pname), field(L["dob"], d(doc["born"]))],
                pad=pad, valign="t", line_w=lw)
    y += pg.row(x0, y, half, [field(L["pid"], str(rng.randint(1000000, 9999999))), field(L["date"], d(doc["issued"]))],
                pad=pad, valign="t", line_w=lw)
    y += pg.mm(8)

    fh, fb = F(body, "b"), F(body)
    qty_w = max(round(width * 0.12), round(fh.getlength(L["cols"][3])) + 2 * pad + 6)  # "Quantité" unshrunk
    widths = [round((width - qty_w) * p) for p in (0.48, 0.17)]
    widths += [width - qty_w - sum(widths), qty_w]
    y += pg.row(x0, y, widths, [[(c, fh)] for c in L["cols"]], pad=pad, fill=(222, 222, 222), line_w=lw)
    for it in doc["items"]:
        y += pg.row(x0, y, widths, [[(f"{it['name']} {it['form']}", fb)], [(it["strength"], fb)],
                                    [(it["sig"], fb)], [(L["qty"].format(q=it["quantity"]), fb)]],
                    pad=pad, min_h=pg.mm(9), line_w=lw)
    for _ in range(rng.randint(1, 3)):  # blank ruled rows of the form
        y += pg.row(x0, y, widths, [[], [], [], []], pad=pad, min_h=pg.mm(9), line_w=lw)
    y += pg.mm(8)

    # A one-cell box, not a table row: its label and note are logged as two lines.
    cell = [(L["notes"], F(body - 1, "b"))] + ([(doc["note"], fb)] if doc["note"] else [])
    y += pg.row(x0, y, [width], [cell], pad=pad, min_h=pg.mm(20), valign="t", line_w=lw, log=False)
    pg.log(L["notes"])
    pg.log(doc["note"])
    y += pg.mm(8)

    dname = doctor_name(rng, lang, dr)
    dgln = gln(rng)
    w3 = [round(width * 0.38), round(width * 0.24)]
    w3.append(width - sum(w3))
    sig = scribble(rng, rng.choice([(25, 45, 140), (20, 20, 30)]))

    def sig_cell(p, box):
        bx0, by0, bx1, by1 = box
        sig(p, (bx0 + pad, by0 + pg.mm(6), bx1 - pad, by1 - pad))

    y += pg.row(x0, y, w3, [field(L["doctor"][dr["sex"] == "f"], dname), field("GLN", dgln),
                            [(L["sign"], small), sig_cell]],
                pad=pad, min_h=pg.mm(24), valign="t", line_w=lw)
    foot = F(body - 3)
    fy = pg.H - margin // 2 - line_h(foot)
    if fy < y + pg.mm(4):
        raise Overflow("footer collides with the prescriber box")
    pg.text(x0, fy, f"{hosp} · {street}", foot, fill=grey, max_w=width * 0.8)
    pg.text(x1, fy, L["page"], foot, anchor="ra", fill=grey, cont=True)
    return pg, {"name": dname, "gln": dgln}


def emediplan_logo(pg, x, y, h, fonts, pt):
    """Three drops in blues forming an 'M', then the word mark."""
    cols = [(70, 150, 205), (120, 185, 225), (90, 165, 215)]
    r = h * 0.28
    for k, c in enumerate(cols):
        cx, cy = x + r + k * r * 1.45, y + h - r - (0 if k != 1 else h * 0.12)
        pg.d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=c)
        pg.d.polygon([(cx - r * 0.98, cy - r * 0.2), (cx + r * 0.98, cy - r * 0.2), (cx, cy - r * 2.6)], fill=c)
    tx = x + r * 2 + 2 * r * 1.45 + pg.mm(3)
    bb, _ = pg.text(tx, y + h * 0.3, "eMediplan", fonts(pt, "b"), fill=(30, 60, 110))
    return bb


def render_emediplan(doc):
    rng, lang = doc["rng"], doc["lang"]
    L = EMP_LABELS[lang]
    dpi = rng.choice([200, 220, 250])
    pg = new_page(rng, (297, 210), dpi)
    F = Fonts(rng.choice(["Liberation Sans", "Liberation Sans", "FreeSans", "DejaVu Sans Condensed"]), dpi)
    body = rng.uniform(8.5, 9.5)
    margin = pg.mm(rng.uniform(9, 12))
    x0, x1 = margin, pg.W - margin
    width = x1 - x0
    city, plz, area = doc["city"]
    dr, pat = doc["doctor"], doc["patient"]
    d = lambda day: fmt_date(day, lang, "dmy")
    y0 = margin

    # Header, read block by block: logo block, patient block, author block (QR is graphics).
    emediplan_logo(pg, x0, y0, pg.mm(16), F, 17)
    pg.text(x0, y0 + pg.mm(25), L["sub"], F(11, "b"), max_w=pg.mm(75))
    px = x0 + pg.mm(88)
    y = y0
    pname = f"{pat['first']} {pat['last']}"
    _, f = pg.text(px, y, pname, F(16), max_w=pg.mm(100))
    y += line_h(f, 1.1)
    sex = L["sex"][pat["sex"] == "f"]
    pg.text(px, y, f"{d(doc['born'])} ({sex})", F(body + 0.5))
    y += line_h(F(body + 0.5), 1.2)
    pc = rng.choice(CITIES[lang])
    addr = f"{rng.choice(STREETS[lang])} {rng.randint(1, 90)}, {pc[1]} {pc[0]}"
    if rng.random() < 0.6:
        addr += f" / +41 {rng.choice(['76', '78', '79'])} {rng.randint(200, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
    pg.text(px, y, addr, F(body + 0.5), max_w=pg.mm(100))
    y += line_h(F(body + 0.5), 1.2) + pg.mm(3)
    fsm = F(body - 1.5)
    h_cm = rng.randint(150, 195)
    facts = [(L["hw"], f"{h_cm} cm / {rng.randint(h_cm - 115, h_cm - 85)} kg"),
             (L["renal"], rng.choice(L["renal_v"])), (L["allergy"], rng.choice(L["allergy_v"]))]
    for lab, v in facts:
        if rng.random() < 0.8:
            pg.text(px, y, lab, fsm, max_w=pg.mm(40))
            pg.text(px + pg.mm(42), y, v, fsm, cont=True, max_w=pg.mm(55))
            y += line_h(fsm, 1.15)
    header_bottom = y
    ax = x0 + pg.mm(192)
    y = y0
    pg.text(ax, y, L["by"], F(body))
    y += line_h(F(body), 1.2) * 2
    author = doctor_name(rng, lang, dr, initial=rng.random() < 0.5)
    agln = gln(rng) if rng.random() < 0.3 else None
    block = [author, rng.choice(PRACTICES[lang]).format(last=dr["last"], city=city), f"{plz} {city}"]
    if agln:
        block.append(f"GLN {agln}")
    qr = pg.mm(34)
    for s in block:
        pg.text(ax, y, s, F(body), max_w=x1 - qr - pg.mm(3) - ax)
        y += line_h(F(body), 1.2)
    pg.img.paste(fake_qr(rng, qr), (x1 - qr, y0))
    y = max(header_bottom, y, y0 + qr) + pg.mm(5)

    issued = f"{L['issued']} {d(doc['issued'])} {rng.randint(7, 18):02d}:{rng.randint(0, 59):02d}"
    _, f = pg.text(x0, y, issued, F(body))
    y += line_h(f, 1.4)

    # Column widths: slot/unit columns just wide enough for their header word.
    fh, fb, fg = F(body, "b"), F(body), F(body - 2)
    pad = pg.mm(1.6)
    cols = L["cols"]
    fixed = [max(pg.mm(14), round(fh.getlength(c)) + 2 * pad + 4) for c in cols[1:6]]
    date_w = round(fb.getlength("00.00.0000")) + 2 * pad + 6
    dates = [max(pg.mm(19), date_w, max(round(fh.getlength(w)) for w in c.split()) + 2 * pad + 4) for c in cols[6:8]]
    pills = rng.random() < 0.6
    name_w, pill_w = pg.mm(44), (pg.mm(15) if pills else 0)
    flex_min = [max(round(fh.getlength(w)) for w in c.split()) + 2 * pad + 4 for c in cols[8:]]
    rest = width - name_w - pill_w - sum(fixed) - sum(dates)
    if rest < sum(flex_min) + pg.mm(6):  # narrow the name column rather than shrink headers
        name_w -= sum(flex_min) + pg.mm(6) - rest
        rest = sum(flex_min) + pg.mm(6)
    extra = rest - sum(flex_min)
    flex = [flex_min[0] + round(extra * 0.4), flex_min[1] + round(extra * 0.25)]
    flex.append(rest - sum(flex))
    lw = max(2, pg.mm(0.2))
    head_w = [name_w + pill_w] + fixed + dates + flex
    y += pg.row(x0, y, head_w, [[(c, fh)] for c in cols], pad=pad, fill=(222, 222, 222), line_w=lw,
                align=["l", "c", "c", "c", "c", "l", "l", "l", "l", "l", "l"])
    body_w = [name_w] + ([pill_w] if pills else []) + fixed + dates + flex
    for it in doc["items"]:
        # "Tabl. 20 mg" as on the real plan; "100 U/ml Fertigpen 3 ml" when the form has a size
        fs = f"{it['strength']} {it['form']}" if re.search(r"\d", it["form"]) else f"{it['form']} {it['strength']}"
        name_cell = [(it["name"], fb), (fs, fb)]
        if it["name"].lower() != it["generic"].lower():
            name_cell.append((it["generic"].title().replace(" And ", " and "), fg))
        slots = [[(c, fb)] for c in it["sig"].split(" ")]
        start = doc["issued"] - timedelta(days=rng.choice([0, 0, 0, 14, 60, 200]))
        until = ""
        if it["_atc"].startswith(("J0", "P01")):  # a current antibiotic course: starts now, has an end
            start = doc["issued"]
            until = d(start + timedelta(days=rng.choice([5, 7, 10])))
        instr = rng.choice(EMP_INSTR[lang]) if it["_kind"] in ("tab", "cap") and rng.random() < 0.4 else ""
        reason = ""
        for pre in sorted(REASONS, key=len, reverse=True):
            if it["_atc"].startswith(pre) and rng.random() < 0.85:
                reason = REASONS[pre][("de", "fr", "it").index(lang)]
                break
        by = doc["doctor"] if rng.random() < 0.6 else person(rng, lang)
        bc = doc["city"][0] if by is doc["doctor"] else rng.choice(CITIES[lang])[0]
        cells = [name_cell] + ([[pill(rng)] if it["_kind"] in ("tab", "cap") else []] if pills else []) + slots + [
            [(UNITS[it["_kind"]][lang][2], fb)], [(d(start), fb)], [(until, fb)] if until else [],
            [(instr, fb)] if instr else [], [(reason, fb)] if reason else [],
            [(f"Dr. {by['last']} {by['first']}, {bc}", fb)]]
        al = ["l"] + (["c"] if pills else []) + ["c"] * 4 + ["l"] * 6
        y += pg.row(x0, y, body_w, cells, pad=pad, min_h=pg.mm(13), line_w=lw, align=al)
    y += pg.mm(4)
    _, f = pg.text(x0, y, L["remark"], F(body, "b"))
    y += line_h(f, 1.5)
    y += pg.row(x0, y, [width], [[(doc["note"], fb)] if doc["note"] else []], pad=pg.mm(2.5),
                min_h=pg.mm(9), fill=(225, 225, 225), grid=False)
    foot = F(body - 1.5)
    fy = pg.H - margin - line_h(foot)
    if fy < y + pg.mm(3):
        raise Overflow("footer collides with the table")
    vendor = f"eMediplan by {rng.choice(EMP_VENDORS)} (V{rng.choice(['1.0', '1.2', '2.0'])})"
    pg.text(x0, fy, f"{pname} ({d(doc['born'])})", foot)
    pg.text(pg.W // 2, fy, vendor, foot, anchor="ma", cont=True)
    pg.text(x1, fy, L["page"], foot, anchor="ra", cont=True)
    return pg, {"name": author, "gln": agln}


def render(doc):
    """Render a document, falling back to a roomier page if it overflows."""
    if doc["layout"] == "gp_letterhead":
        sizes = [A5, A4] if len(doc["items"]) <= 2 and doc["rng"].random() < 0.6 else [A4]
        for i, size in enumerate(sizes):
            try:
                return render_gp(doc, size), size
            except Overflow:
                if i == len(sizes) - 1:
                    raise
    if doc["layout"] == "hospital":
        return render_hospital(doc), A4
    return render_emediplan(doc), (297, 210)


# --------------------------------------------------------------------------
# Photo degradations
# --------------------------------------------------------------------------
DESKS = [(140, 100, 65), (175, 140, 100), (95, 95, 100), (60, 58, 55), (120, 130, 140), (185, 180, 170),
         (45, 50, 60)]


def desk_texture(size, rng, nrng):
    """Low-frequency blotches plus grain streaks on a base colour. Built at a
    quarter of the resolution: it is smooth, only the margins show, and the
    photo's blur/noise/JPEG hide the upscaling."""
    w, h = size
    sw, sh = w // 4 + 1, h // 4 + 1
    base = np.array(rng.choice(DESKS), dtype=np.float32)
    low = Image.fromarray(nrng.normal(0, 1, (sh // 24 + 2, sw // 24 + 2)).astype(np.float32), "F")
    grain = Image.fromarray(nrng.normal(0, 1, (sh + 1, 6)).astype(np.float32), "F")  # streaks along x
    var = 1 + 0.06 * np.asarray(low.resize((sw, sh), Image.BICUBIC)) + 0.04 * np.asarray(grain.resize((sw, sh), Image.BILINEAR))
    small = Image.fromarray(np.clip(base * var[..., None], 0, 255).astype(np.uint8))
    return small.resize((w, h), Image.BILINEAR)


def perspective_coeffs(dst, src):
    """PIL PERSPECTIVE data mapping output points dst to input points src."""
    a = []
    for (x, y), (u, v) in zip(dst, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    return np.linalg.solve(np.array(a, dtype=np.float64), np.array(src, dtype=np.float64).reshape(8)).tolist()


def r1(v):
    return round(float(v), 1)


def photograph(page, rng, nrng):
    """Turn a clean page into a phone photo; returns (image, degradations)."""
    if rng.random() < 0.2:
        return page, []
    W, H = page.size
    persp = rng.random() < 0.55
    rot = rng.random() < (0.35 if persp else 0.6)
    degs = []
    img = page
    if persp or rot:
        m = W * rng.uniform(0.04, 0.09)
        pts = [(m, m), (m + W, m), (m + W, m + H), (m, m + H)]
        if persp:
            k = round(rng.uniform(0.02, 0.08), 3)
            edge = rng.choice(["top", "top", "bottom", "left", "right"])
            s = k * W
            pts = [list(p) for p in pts]
            if edge == "top":
                pts[0][0] += s; pts[1][0] -= s
            elif edge == "bottom":
                pts[3][0] += s; pts[2][0] -= s
            elif edge == "left":
                pts[0][1] += s; pts[3][1] -= s
            else:
                pts[1][1] += s; pts[2][1] -= s
            pts = [(x + rng.uniform(-0.012, 0.012) * W, y + rng.uniform(-0.012, 0.012) * W) for x, y in pts]
            pts = [(r1(x), r1(y)) for x, y in pts]
            degs.append({"kind": "perspective", "keystone": k, "far_edge": edge, "page_corners": [list(p) for p in pts]})
        out_w, out_h = round(W + 2 * m), round(H + 2 * m)
        if rot:
            deg = r1(rng.choice([-1, 1]) * rng.uniform(0.5, 10))
            c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
            cx, cy = out_w / 2, out_h / 2
            # counter-clockwise on screen for positive degrees, as PIL's rotate
            pts = [(cx + c * (x - cx) + s * (y - cy), cy - s * (x - cx) + c * (y - cy)) for x, y in pts]
            minx, miny = min(p[0] for p in pts), min(p[1] for p in pts)
            pts = [(r1(x - minx + m), r1(y - miny + m)) for x, y in pts]
            out_w = round(max(p[0] for p in pts) + m)
            out_h = round(max(p[1] for p in pts) + m)
            degs.append({"kind": "rotate", "degrees": deg, "page_corners": [list(p) for p in pts]})
        coeffs = perspective_coeffs(pts, [(0, 0), (W, 0), (W, H), (0, H)])
        desk = desk_texture((out_w, out_h), rng, nrng)
        # One resampling of the page; its alpha (0 outside the page) is the paste mask.
        warped = page.convert("RGBA").transform((out_w, out_h), Image.PERSPECTIVE, coeffs, Image.BILINEAR)
        desk.paste(warped, (0, 0), warped)
        img = desk
    w, h = img.size
    if rng.random() < 0.5:
        sw, sh = max(8, w // 16), max(8, h // 16)
        yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
        xx, yy = xx / (sw - 1), yy / (sh - 1)
        strength = round(rng.uniform(0.2, 0.5), 2)
        if rng.random() < 0.5:
            ang = r1(rng.uniform(0, 360))
            t = (xx - 0.5) * math.cos(math.radians(ang)) + (yy - 0.5) * math.sin(math.radians(ang))
            t = np.clip(t / 0.71 + 0.5, 0, 1)
            illum = 1 - strength * t * t * (3 - 2 * t)  # smoothstep: light one side, dark the other
            degs.append({"kind": "shadow", "style": "gradient", "strength": strength, "angle_deg": ang})
        else:
            cx, cy, rad = round(rng.uniform(0.1, 0.9), 2), round(rng.uniform(0.1, 0.9), 2), round(rng.uniform(0.15, 0.4), 2)
            asp = w / h
            d2 = ((xx - cx) * asp) ** 2 + (yy - cy) ** 2
            illum = 1 - strength * np.exp(-d2 / (2 * (rad * min(1, asp)) ** 2))
            degs.append({"kind": "shadow", "style": "blob", "strength": strength, "center": [cx, cy], "radius": rad})
        # Multiply by the illumination map in PIL (8-bit, C speed): out = img * L / 255.
        lum = Image.fromarray(np.round(illum * 255).astype(np.uint8), "L").resize((w, h), Image.BILINEAR)
        img = ImageChops.multiply(img, Image.merge("RGB", (lum, lum, lum)))
    if rng.random() < 0.5:
        radius = round(rng.uniform(0.5, 1.5), 2)
        img = img.filter(ImageFilter.GaussianBlur(radius))
        degs.append({"kind": "blur", "radius": radius})
    if rng.random() < 0.6:
        sigma = r1(rng.uniform(3, 10))
        # Gaussian luminance noise: uniform random bytes through the normal
        # quantile function (a 256-entry table), ~10x cheaper than float normals.
        nd = NormalDist(128.5, sigma)
        lut = [min(255, max(0, int(nd.inv_cdf((u + 0.5) / 256)))) for u in range(256)]
        n = Image.frombytes("L", (w, h), nrng.bytes(w * h)).point(lut)
        img = ImageChops.add(img, Image.merge("RGB", (n, n, n)), offset=-128)
        degs.append({"kind": "noise", "sigma": sigma})
    degs.append({"kind": "jpeg", "quality": rng.randint(35, 85)})
    return img, degs


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------
_VOCAB = None


def _init(vocab):
    global _VOCAB
    _VOCAB = vocab


def generate(args):
    idx, seed, out_dir = args
    doc = make_doc(idx, seed, _VOCAB)
    (pg, prescriber), size = render(doc)
    prng = random.Random(f"photo:{seed}:{idx}")
    nrng = np.random.default_rng([seed, idx])
    img, degs = photograph(pg.img, prng, nrng)
    ext = "jpg" if degs else "png"
    name = f"{doc['id']}.{ext}"
    if degs:
        img.save(out_dir / name, "JPEG", quality=degs[-1]["quality"])
    else:
        img.save(out_dir / name, "PNG", compress_level=4)
    split = "tune" if idx % 4 == 0 else "holdout"
    pat = doc["patient"]
    gt = {
        "id": doc["id"], "split": split, "layout": doc["layout"], "language": doc["lang"], "image": name,
        "degradations": degs, "text": "\n".join(pg.lines),
        "patient": {"name": f"{pat['first']} {pat['last']}", "birth_date": doc["born"].isoformat()},
        "prescriber": prescriber, "date": doc["issued"].isoformat(),
        "items": [{k: v for k, v in it.items() if not k.startswith("_")} for it in doc["items"]],
        "notes": doc["note"],
    }
    with open(out_dir / f"{doc['id']}.json", "w", encoding="utf-8") as f:
        json.dump(gt, f, ensure_ascii=False, indent=2)
        f.write("\n")
    return {"id": doc["id"], "image": name, "split": split, "layout": doc["layout"], "language": doc["lang"],
            "paper": "A5" if size == A5 else "A4" if size == A4 else "A4 landscape", "dpi": pg.dpi,
            "degradations": [g["kind"] for g in degs]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path, help="where NNNN.{jpg,png,json} and manifest.json go")
    ap.add_argument("--count", type=int, default=240, help="number of images (default 240)")
    ap.add_argument("--seed", type=int, default=7, help="the output is a function of the seed (default 7)")
    ap.add_argument("--jobs", type=int, default=2, choices=(1, 2), help="worker processes (at most 2)")
    a = ap.parse_args()
    if a.count < 1 or a.count > 9999:
        ap.error("--count must be 1..9999")
    t0 = time.monotonic()
    vocab = load_vocab()
    if vocab["warning"]:
        print(vocab["warning"], file=sys.stderr)
    a.out_dir.mkdir(parents=True, exist_ok=True)
    # Stale outputs of an earlier, larger run would look like part of this set.
    for p in a.out_dir.iterdir():
        if re.fullmatch(r"\d{4}\.(json|jpg|png)", p.name):
            p.unlink()
    jobs = [(i, a.seed, a.out_dir) for i in range(a.count)]
    if a.jobs == 1:
        _init(vocab)
        entries = [generate(j) for j in jobs]
    else:
        with Pool(a.jobs, initializer=_init, initargs=(vocab,)) as pool:
            entries = list(pool.imap(generate, jobs, chunksize=2))
    summary = {
        "split": dict(sorted(Counter(e["split"] for e in entries).items())),
        "layout": dict(sorted(Counter(e["layout"] for e in entries).items())),
        "language": dict(sorted(Counter(e["language"] for e in entries).items())),
        "degradations": dict(sorted(Counter(k for e in entries for k in e["degradations"]).items())),
        "clean": sum(1 for e in entries if not e["degradations"]),
    }
    manifest = {"generator": "scripts/gen_prescriptions.py", "seed": a.seed, "count": a.count,
                "summary": summary, "images": entries}
    with open(a.out_dir / "manifest.json", "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print(f"wrote {a.count} images to {a.out_dir} in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    print(json.dumps(summary, ensure_ascii=False), file=sys.stderr)


if __name__ == "__main__":
    main()
