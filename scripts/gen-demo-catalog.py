#!/usr/bin/env python3
"""Generate hub/data/demo-catalog.csv: about 300 common medicines for the demo.

Names are real: each generic's ingredient is a canonical drug name from
../shared/fixtures/drugs/drug_names.tsv, and each brand is a name that file
lists as a variant of that drug (brands not in the file are skipped).
Strengths, forms and ATC codes are the usual ones for these medicines.
Prices and GTINs are invented: GTINs use GS1 prefix 952, which GS1 reserves
for demonstrations and examples (no company owns it), with correct check digits.

Usage: scripts/gen-demo-catalog.py [FIXTURES_DIR] > hub/data/demo-catalog.csv
"""
import csv
import os
import sys

# canonical (as in drug_names.tsv), ATC, strength, form, pack, storage, price CHF,
# max daily mg (0: none given), controlled, VAT class, candidate brand names
MEDICINES = [
    ("acetaminophen", "N02BE01", "500 mg", "tablet", 20, "room", 3.90, 4000, False, ["dafalgan", "panadol", "tylenol", "calpol"]),
    ("ibuprofen", "M01AE01", "400 mg", "tablet", 20, "room", 6.80, 2400, False, ["brufen", "advil", "nurofen", "motrin"]),
    ("naproxen", "M01AE02", "500 mg", "tablet", 30, "room", 12.40, 1000, False, ["aleve", "naprosyn", "proxen", "apranax"]),
    ("diclofenac", "M01AB05", "50 mg", "tablet", 30, "room", 9.90, 150, False, ["voltaren", "cataflam", "voltarol"]),
    ("aspirin", "B01AC06", "100 mg", "tablet", 30, "room", 4.50, 0, False, ["aspirin cardio", "ecotrin", "bayer aspirin"]),
    ("dipyrone", "N02BB02", "500 mg", "tablet", 20, "room", 7.20, 4000, False, ["novalgin", "minalgin", "dipyrone"]),
    ("tramadol", "N02AX02", "50 mg", "capsule", 20, "room", 11.60, 400, False, ["tramal", "ultram", "contramal"]),
    ("oxycodone", "N02AA05", "10 mg", "prolonged-release tablet", 30, "room", 48.30, 0, True, ["oxycontin", "oxynorm", "roxicodone"]),
    ("morphine", "N02AA01", "10 mg", "prolonged-release tablet", 30, "room", 22.10, 0, True, ["ms contin", "sevredol", "mst continus"]),
    ("fentanyl", "N02AB03", "25 mcg/h", "transdermal patch", 5, "room", 61.50, 0, True, ["durogesic", "duragesic"]),
    ("codeine", "R05DA04", "30 mg", "tablet", 10, "room", 8.40, 240, True, ["codicontin"]),
    ("methylphenidate", "N06BA04", "10 mg", "tablet", 30, "room", 17.80, 60, True, ["ritalin", "concerta", "medikinet"]),
    ("zolpidem", "N05CF02", "10 mg", "tablet", 10, "room", 9.30, 10, True, ["stilnox", "ambien"]),
    ("lorazepam", "N05BA06", "1 mg", "tablet", 20, "room", 6.90, 10, True, ["temesta", "ativan"]),
    ("diazepam", "N05BA01", "5 mg", "tablet", 20, "room", 5.70, 40, True, ["valium", "stesolid"]),
    ("alprazolam", "N05BA12", "0.5 mg", "tablet", 30, "room", 10.20, 4, True, ["xanax", "xanor"]),
    ("amlodipine", "C08CA01", "5 mg", "tablet", 30, "room", 18.90, 10, False, ["norvasc", "istin", "amlor"]),
    ("lisinopril", "C09AA03", "10 mg", "tablet", 30, "room", 14.70, 80, False, ["zestril", "prinivil"]),
    ("enalapril", "C09AA02", "10 mg", "tablet", 30, "room", 13.20, 40, False, ["reniten", "vasotec", "renitec"]),
    ("ramipril", "C09AA05", "5 mg", "tablet", 30, "room", 15.60, 10, False, ["triatec", "altace", "tritace"]),
    ("perindopril", "C09AA04", "5 mg", "tablet", 30, "room", 19.80, 10, False, ["coversum", "aceon", "coversyl"]),
    ("losartan", "C09CA01", "50 mg", "tablet", 28, "room", 21.40, 100, False, ["cosaar", "cozaar"]),
    ("valsartan", "C09CA03", "80 mg", "tablet", 28, "room", 23.60, 320, False, ["diovan"]),
    ("candesartan", "C09CA06", "8 mg", "tablet", 28, "room", 24.10, 32, False, ["atacand", "blopress"]),
    ("irbesartan", "C09CA04", "150 mg", "tablet", 28, "room", 22.90, 300, False, ["aprovel", "avapro"]),
    ("telmisartan", "C09CA07", "40 mg", "tablet", 28, "room", 25.30, 80, False, ["micardis", "kinzal"]),
    ("bisoprolol", "C07AB07", "5 mg", "tablet", 30, "room", 14.10, 20, False, ["concor", "zebeta", "cardicor"]),
    ("metoprolol", "C07AB02", "50 mg", "tablet", 30, "room", 12.80, 200, False, ["beloc", "lopressor", "toprol", "beloc zok"]),
    ("atenolol", "C07AB03", "50 mg", "tablet", 30, "room", 9.60, 100, False, ["tenormin"]),
    ("carvedilol", "C07AG02", "12.5 mg", "tablet", 30, "room", 16.30, 50, False, ["dilatrend", "coreg", "eucardic"]),
    ("nebivolol", "C07AB12", "5 mg", "tablet", 28, "room", 26.40, 10, False, ["nebilet", "bystolic", "nebilox"]),
    ("hydrochlorothiazide", "C03AA03", "25 mg", "tablet", 30, "room", 7.40, 50, False, ["esidrex", "microzide", "hydrodiuril"]),
    ("furosemide", "C03CA01", "40 mg", "tablet", 30, "room", 8.10, 500, False, ["lasix"]),
    ("torsemide", "C03CA04", "10 mg", "tablet", 30, "room", 16.90, 200, False, ["torem", "demadex"]),
    ("spironolactone", "C03DA01", "25 mg", "tablet", 30, "room", 11.20, 400, False, ["aldactone"]),
    ("indapamide", "C03BA11", "1.5 mg", "prolonged-release tablet", 30, "room", 13.50, 2.5, False, ["fludex", "natrilix", "lozol"]),
    ("atorvastatin", "C10AA05", "20 mg", "tablet", 30, "room", 27.80, 80, False, ["sortis", "lipitor"]),
    ("simvastatin", "C10AA01", "20 mg", "tablet", 30, "room", 16.20, 80, False, ["zocor"]),
    ("rosuvastatin", "C10AA07", "10 mg", "tablet", 30, "room", 29.90, 40, False, ["crestor"]),
    ("pravastatin", "C10AA03", "20 mg", "tablet", 30, "room", 21.10, 40, False, ["pravachol", "selipran"]),
    ("ezetimibe", "C10AX09", "10 mg", "tablet", 28, "room", 34.60, 10, False, ["ezetrol", "zetia"]),
    ("clopidogrel", "B01AC04", "75 mg", "tablet", 28, "room", 31.70, 75, False, ["plavix", "iscover"]),
    ("ticagrelor", "B01AC24", "90 mg", "tablet", 56, "room", 98.40, 180, False, ["brilique", "brilinta"]),
    ("warfarin", "B01AA03", "5 mg", "tablet", 30, "room", 9.80, 0, False, ["coumadin", "marevan", "jantoven"]),
    ("phenprocoumon", "B01AA04", "3 mg", "tablet", 25, "room", 11.40, 0, False, ["marcoumar", "marcumar", "falithrom"]),
    ("apixaban", "B01AF02", "5 mg", "tablet", 60, "room", 118.60, 20, False, ["eliquis"]),
    ("rivaroxaban", "B01AF01", "20 mg", "tablet", 28, "room", 109.30, 20, False, ["xarelto"]),
    ("dabigatran", "B01AE07", "150 mg", "capsule", 60, "room", 112.80, 300, False, ["pradaxa"]),
    ("edoxaban", "B01AF03", "60 mg", "tablet", 28, "room", 105.10, 60, False, ["lixiana", "savaysa"]),
    ("digoxin", "C01AA05", "0.25 mg", "tablet", 30, "room", 7.90, 0.5, False, ["lanoxin"]),
    ("amiodarone", "C01BD01", "200 mg", "tablet", 30, "room", 24.70, 1200, False, ["cordarone", "pacerone"]),
    ("isosorbide mononitrate", "C01DA14", "40 mg", "prolonged-release tablet", 30, "room", 14.90, 120, False, ["imdur", "corangin", "elantan"]),
    ("nitroglycerin", "C01DA02", "0.4 mg", "sublingual spray", 1, "room", 16.50, 0, False, ["nitrolingual", "nitrostat", "nitro-dur"]),
    ("metformin", "A10BA02", "500 mg", "tablet", 50, "room", 9.40, 3000, False, ["glucophage", "glucophage xr", "fortamet"]),
    ("gliclazide", "A10BB09", "30 mg", "modified-release tablet", 60, "room", 15.80, 120, False, ["diamicron"]),
    ("glimepiride", "A10BB12", "2 mg", "tablet", 30, "room", 13.70, 8, False, ["amaryl"]),
    ("sitagliptin", "A10BH01", "100 mg", "tablet", 28, "room", 66.90, 100, False, ["januvia", "xelevia"]),
    ("empagliflozin", "A10BK03", "10 mg", "tablet", 30, "room", 69.80, 25, False, ["jardiance"]),
    ("dapagliflozin", "A10BK01", "10 mg", "tablet", 28, "room", 68.40, 10, False, ["forxiga", "farxiga"]),
    ("insulin glargine", "A10AE04", "100 U/ml", "pen 3 ml", 5, "fridge", 74.60, 0, False, ["lantus", "toujeo", "abasaglar", "basaglar"]),
    ("insulin aspart", "A10AB05", "100 U/ml", "pen 3 ml", 5, "fridge", 62.30, 0, False, ["novorapid", "novolog", "fiasp"]),
    ("insulin lispro", "A10AB04", "100 U/ml", "pen 3 ml", 5, "fridge", 63.10, 0, False, ["humalog", "admelog", "lyumjev"]),
    ("insulin detemir", "A10AE05", "100 U/ml", "pen 3 ml", 5, "fridge", 79.20, 0, False, ["levemir"]),
    ("insulin degludec", "A10AE06", "100 U/ml", "pen 3 ml", 5, "fridge", 96.40, 0, False, ["tresiba"]),
    ("semaglutide", "A10BJ06", "1 mg", "pen", 1, "fridge", 122.50, 0, False, ["ozempic", "wegovy", "rybelsus"]),
    ("liraglutide", "A10BJ02", "6 mg/ml", "pen 3 ml", 2, "fridge", 118.70, 0, False, ["victoza", "saxenda"]),
    ("dulaglutide", "A10BJ05", "1.5 mg", "pen", 4, "fridge", 124.90, 0, False, ["trulicity"]),
    ("adalimumab", "L04AB04", "40 mg", "prefilled syringe", 2, "fridge", 1180.00, 0, False, ["humira", "amgevita", "hyrimoz", "imraldi", "hulio"]),
    ("etanercept", "L04AB01", "50 mg", "prefilled pen", 4, "fridge", 1320.00, 0, False, ["enbrel", "benepali", "erelzi"]),
    ("enoxaparin", "B01AB05", "40 mg", "prefilled syringe", 10, "room", 48.90, 0, False, ["clexane", "lovenox"]),
    ("epoetin alfa", "B03XA01", "4000 IU", "prefilled syringe", 6, "fridge", 312.40, 0, False, ["eprex", "epogen", "procrit", "binocrit"]),
    ("teriparatide", "H05AA02", "20 mcg", "pen", 1, "fridge", 389.00, 0, False, ["forsteo", "forteo", "movymia"]),
    ("levothyroxine", "H03AA01", "50 mcg", "tablet", 100, "room", 12.60, 0, False, ["eltroxin", "euthyrox", "synthroid", "levoxyl", "tirosint"]),
    ("carbimazole", "H03BB01", "5 mg", "tablet", 100, "room", 15.30, 60, False, ["neo-mercazole", "neomercazole"]),
    ("prednisone", "H02AB07", "5 mg", "tablet", 30, "room", 8.90, 0, False, ["deltasone", "rayos"]),
    ("prednisolone", "H02AB06", "5 mg", "tablet", 30, "room", 9.40, 0, False, ["spiricort", "orapred", "millipred"]),
    ("dexamethasone", "H02AB02", "4 mg", "tablet", 20, "room", 14.20, 0, False, ["fortecortin", "decadron", "dexamethasone intensol"]),
    ("hydrocortisone", "D07AA02", "1 %", "cream 30 g", 1, "room", 8.70, 0, False, ["cortaid", "cortizone", "hydrocort"]),
    ("betamethasone", "D07AC01", "0.1 %", "cream 30 g", 1, "room", 12.90, 0, False, ["betnovate", "celestone", "diprosone"]),
    ("mometasone", "R01AD09", "50 mcg/dose", "nasal spray", 1, "room", 18.60, 0, False, ["nasonex", "elocon", "asmanex"]),
    ("fluticasone", "R03BA05", "250 mcg/dose", "inhaler", 1, "room", 39.80, 0, False, ["flixotide", "flovent", "flonase", "flixonase"]),
    ("budesonide", "R03BA02", "200 mcg/dose", "inhaler", 1, "room", 32.40, 0, False, ["pulmicort", "entocort", "rhinocort"]),
    ("albuterol", "R03AC02", "100 mcg/dose", "inhaler", 1, "room", 11.80, 0, False, ["ventolin", "proventil", "proair", "airomir"]),
    ("formoterol", "R03AC13", "12 mcg", "inhalation capsule", 60, "room", 44.70, 0, False, ["foradil", "oxis", "perforomist"]),
    ("salmeterol", "R03AC12", "50 mcg/dose", "inhaler", 1, "room", 47.90, 0, False, ["serevent"]),
    ("tiotropium", "R03BB04", "18 mcg", "inhalation capsule", 30, "room", 64.30, 0, False, ["spiriva"]),
    ("montelukast", "R03DC03", "10 mg", "tablet", 28, "room", 39.60, 10, False, ["singulair"]),
    ("cetirizine", "R06AE07", "10 mg", "tablet", 20, "room", 9.70, 10, False, ["zyrtec", "reactine"]),
    ("loratadine", "R06AX13", "10 mg", "tablet", 20, "room", 9.20, 10, False, ["claritin", "clarityn", "claritine"]),
    ("desloratadine", "R06AX27", "5 mg", "tablet", 30, "room", 17.40, 5, False, ["aerius", "clarinex", "neoclarityn"]),
    ("fexofenadine", "R06AX26", "180 mg", "tablet", 30, "room", 19.90, 180, False, ["telfast", "allegra"]),
    ("levocetirizine", "R06AE09", "5 mg", "tablet", 30, "room", 16.80, 5, False, ["xyzal", "xyzall"]),
    ("omeprazole", "A02BC01", "20 mg", "capsule", 28, "room", 16.40, 40, False, ["prilosec", "losec", "antra"]),
    ("pantoprazole", "A02BC02", "40 mg", "tablet", 30, "room", 21.30, 80, False, ["pantozol", "protonix", "controloc"]),
    ("esomeprazole", "A02BC05", "20 mg", "tablet", 28, "room", 24.60, 40, False, ["nexium"]),
    ("lansoprazole", "A02BC03", "30 mg", "capsule", 28, "room", 19.70, 60, False, ["prevacid", "agopton", "zoton"]),
    ("ranitidine", "A02BA02", "150 mg", "tablet", 20, "room", 12.10, 300, False, ["zantac"]),
    ("metoclopramide", "A03FA01", "10 mg", "tablet", 20, "room", 7.80, 30, False, ["primperan", "paspertin", "reglan"]),
    ("domperidone", "A03FA03", "10 mg", "tablet", 30, "room", 10.60, 30, False, ["motilium"]),
    ("ondansetron", "A04AA01", "8 mg", "orodispersible tablet", 10, "room", 39.20, 24, False, ["zofran"]),
    ("loperamide", "A07DA03", "2 mg", "capsule", 20, "room", 8.30, 16, False, ["imodium"]),
    ("mesalazine", "A07EC02", "500 mg", "tablet", 100, "room", 49.80, 4800, False, ["asacol", "salofalk", "pentasa", "lialda", "mezavant"]),
    ("macrogol", "A06AD15", "13.7 g", "sachet", 20, "room", 17.20, 0, False, ["movicol", "transipeg", "miralax"]),
    ("lactulose", "A06AD11", "667 mg/ml", "syrup 200 ml", 1, "room", 9.60, 0, False, ["duphalac", "kristalose", "enulose"]),
    ("bisacodyl", "A06AB02", "5 mg", "tablet", 30, "room", 7.10, 10, False, ["dulcolax", "correctol"]),
    ("amoxicillin", "J01CA04", "1000 mg", "tablet", 20, "room", 16.80, 3000, False, ["amoxil", "clamoxyl", "trimox"]),
    ("amoxicillin and clavulanic acid", "J01CR02", "875/125 mg", "tablet", 20, "room", 29.40, 2625, False, ["augmentin", "co-amoxiclav"]),
    ("azithromycin", "J01FA10", "500 mg", "tablet", 3, "room", 19.90, 500, False, ["zithromax", "sumamed", "azithrocin"]),
    ("clarithromycin", "J01FA09", "500 mg", "tablet", 14, "room", 28.60, 1000, False, ["klacid", "biaxin", "klaricid"]),
    ("doxycycline", "J01AA02", "100 mg", "tablet", 10, "room", 11.90, 200, False, ["vibramycin", "doryx", "vibra-tabs"]),
    ("ciprofloxacin", "J01MA02", "500 mg", "tablet", 10, "room", 21.70, 1500, False, ["ciproxin", "cipro", "ciloxan"]),
    ("levofloxacin", "J01MA12", "500 mg", "tablet", 7, "room", 26.80, 1000, False, ["tavanic", "levaquin"]),
    ("cefuroxime", "J01DC02", "500 mg", "tablet", 14, "room", 27.10, 1000, False, ["zinacef", "ceftin", "zinnat"]),
    ("cefalexin", "J01DB01", "500 mg", "capsule", 20, "room", 18.30, 4000, False, ["keflex", "ceporex"]),
    ("nitrofurantoin", "J01XE01", "100 mg", "capsule", 14, "room", 15.40, 400, False, ["macrobid", "macrodantin", "furadantin", "uvamin"]),
    ("fosfomycin", "J01XX01", "3 g", "granules sachet", 1, "room", 18.90, 3000, False, ["monuril", "monurol"]),
    ("sulfamethoxazole", "J01EE01", "800/160 mg", "tablet", 10, "room", 10.40, 0, False, ["bactrim", "septra", "cotrim"]),
    ("metronidazole", "P01AB01", "500 mg", "tablet", 14, "room", 13.60, 4000, False, ["flagyl", "metrogel"]),
    ("clindamycin", "J01FF01", "300 mg", "capsule", 16, "room", 32.70, 1800, False, ["dalacin", "cleocin"]),
    ("fluconazole", "J02AC01", "150 mg", "capsule", 1, "room", 14.80, 400, False, ["diflucan"]),
    ("terbinafine", "D01BA02", "250 mg", "tablet", 14, "room", 39.90, 250, False, ["lamisil"]),
    ("clotrimazole", "D01AC01", "1 %", "cream 20 g", 1, "room", 8.90, 0, False, ["canesten", "lotrimin", "mycelex"]),
    ("aciclovir", "J05AB01", "400 mg", "tablet", 35, "room", 32.10, 4000, False, ["zovirax"]),
    ("valacyclovir", "J05AB11", "500 mg", "tablet", 10, "room", 38.70, 3000, False, ["valtrex", "zelitrex"]),
    ("oseltamivir", "J05AH02", "75 mg", "capsule", 10, "room", 42.60, 150, False, ["tamiflu"]),
    ("sertraline", "N06AB06", "50 mg", "tablet", 30, "room", 24.90, 200, False, ["zoloft", "lustral", "gladem"]),
    ("escitalopram", "N06AB10", "10 mg", "tablet", 28, "room", 29.80, 20, False, ["cipralex", "lexapro"]),
    ("citalopram", "N06AB04", "20 mg", "tablet", 28, "room", 21.60, 40, False, ["celexa", "cipramil", "seropram"]),
    ("fluoxetine", "N06AB03", "20 mg", "capsule", 30, "room", 19.40, 60, False, ["prozac", "fluctine", "sarafem"]),
    ("paroxetine", "N06AB05", "20 mg", "tablet", 30, "room", 22.70, 60, False, ["paxil", "deroxat", "seroxat"]),
    ("venlafaxine", "N06AX16", "75 mg", "prolonged-release capsule", 28, "room", 31.80, 375, False, ["efexor", "effexor"]),
    ("duloxetine", "N06AX21", "60 mg", "capsule", 28, "room", 45.30, 120, False, ["cymbalta", "yentreve"]),
    ("mirtazapine", "N06AX11", "30 mg", "tablet", 30, "room", 27.40, 45, False, ["remeron", "zispin"]),
    ("trazodone", "N06AX05", "100 mg", "tablet", 30, "room", 16.70, 400, False, ["trittico", "desyrel", "oleptro"]),
    ("amitriptyline", "N06AA09", "25 mg", "tablet", 30, "room", 8.60, 150, False, ["saroten", "elavil", "tryptizol"]),
    ("bupropion", "N06AX12", "150 mg", "prolonged-release tablet", 30, "room", 46.20, 450, False, ["wellbutrin", "zyban", "aplenzin"]),
    ("quetiapine", "N05AH04", "25 mg", "tablet", 60, "room", 26.30, 800, False, ["seroquel"]),
    ("olanzapine", "N05AH03", "10 mg", "tablet", 28, "room", 52.90, 20, False, ["zyprexa"]),
    ("risperidone", "N05AX08", "1 mg", "tablet", 20, "room", 24.10, 16, False, ["risperdal"]),
    ("aripiprazole", "N05AX12", "10 mg", "tablet", 28, "room", 69.70, 30, False, ["abilify"]),
    ("haloperidol", "N05AD01", "5 mg", "tablet", 20, "room", 9.10, 20, False, ["haldol", "serenace"]),
    ("lithium carbonate", "N05AN01", "330 mg", "prolonged-release tablet", 100, "room", 18.40, 0, False, ["quilonum", "priadel", "lithobid", "eskalith"]),
    ("levetiracetam", "N03AX14", "500 mg", "tablet", 60, "room", 49.60, 3000, False, ["keppra"]),
    ("lamotrigine", "N03AX09", "100 mg", "tablet", 56, "room", 44.20, 500, False, ["lamictal"]),
    ("valproic acid", "N03AG01", "500 mg", "prolonged-release tablet", 50, "room", 28.70, 2500, False, ["depakine", "depakote", "orfiril", "convulex"]),
    ("carbamazepine", "N03AF01", "200 mg", "tablet", 50, "room", 15.90, 1600, False, ["tegretol", "timonil", "carbatrol"]),
    ("pregabalin", "N03AX16", "75 mg", "capsule", 56, "room", 41.30, 600, False, ["lyrica"]),
    ("gabapentin", "N03AX12", "300 mg", "capsule", 50, "room", 29.60, 3600, False, ["neurontin", "gralise", "horizant"]),
    ("topiramate", "N03AX11", "50 mg", "tablet", 60, "room", 47.80, 400, False, ["topamax"]),
    ("levodopa and carbidopa", "N04BA02", "100/25 mg", "tablet", 100, "room", 38.90, 0, False, ["sinemet", "madopar", "parcopa"]),
    ("pramipexole", "N04BC05", "0.25 mg", "tablet", 30, "room", 27.30, 4.5, False, ["sifrol", "mirapex", "mirapexin"]),
    ("donepezil", "N06DA02", "10 mg", "tablet", 28, "room", 54.10, 10, False, ["aricept"]),
    ("memantine", "N06DX01", "20 mg", "tablet", 28, "room", 59.40, 20, False, ["axura", "ebixa", "namenda"]),
    ("sumatriptan", "N02CC01", "50 mg", "tablet", 6, "room", 29.70, 300, False, ["imigran", "imitrex"]),
    ("rizatriptan", "N02CC04", "10 mg", "orodispersible tablet", 6, "room", 33.80, 20, False, ["maxalt", "rizalt"]),
    ("allopurinol", "M04AA01", "300 mg", "tablet", 30, "room", 11.70, 900, False, ["zyloric", "zyloprim", "aloprim"]),
    ("febuxostat", "M04AA03", "80 mg", "tablet", 28, "room", 36.40, 120, False, ["adenuric", "uloric"]),
    ("colchicine", "M04AC01", "0.5 mg", "tablet", 20, "room", 12.80, 2, False, ["colcrys", "mitigare", "colchicum-dispert"]),
    ("alendronic acid", "M05BA04", "70 mg", "tablet", 4, "room", 24.30, 0, False, ["fosamax", "binosto"]),
    ("methotrexate", "L04AX03", "2.5 mg", "tablet", 30, "room", 19.60, 0, False, ["trexall", "metoject", "otrexup", "rheumatrex"]),
    ("hydroxychloroquine", "P01BA02", "200 mg", "tablet", 30, "room", 22.40, 600, False, ["plaquenil", "quensyl"]),
    ("tamsulosin", "G04CA02", "0.4 mg", "modified-release capsule", 30, "room", 23.90, 0.4, False, ["pradif", "flomax", "omnic"]),
    ("finasteride", "G04CB01", "5 mg", "tablet", 30, "room", 34.20, 5, False, ["proscar", "propecia"]),
    ("sildenafil", "G04BE03", "50 mg", "tablet", 4, "room", 39.80, 100, False, ["viagra", "revatio"]),
    ("tadalafil", "G04BE08", "5 mg", "tablet", 28, "room", 79.60, 20, False, ["cialis", "adcirca"]),
    ("solifenacin", "G04BD08", "5 mg", "tablet", 30, "room", 49.30, 10, False, ["vesicare", "vesikur"]),
    ("mirabegron", "G04BD12", "50 mg", "prolonged-release tablet", 30, "room", 58.70, 50, False, ["betmiga", "myrbetriq"]),
    ("ethinyl estradiol", "G03AA07", "0.15/0.03 mg", "tablet", 63, "room", 27.90, 0, False, ["microgynon", "nordette", "levora"]),
    ("levonorgestrel", "G03AD01", "1.5 mg", "tablet", 1, "room", 24.50, 0, False, ["norlevo", "plan b", "postinor"]),
    ("estradiol", "G03CA03", "2 mg", "tablet", 28, "room", 19.80, 0, False, ["estrofem", "estrace", "progynova"]),
    ("ferrous sulfate", "B03AA07", "80 mg iron", "prolonged-release tablet", 30, "room", 9.90, 0, False, ["tardyferon", "feosol", "ferrograd"]),
    ("folic acid", "B03BB01", "5 mg", "tablet", 20, "room", 5.90, 0, False, ["folvite", "folsan"]),
    ("cyanocobalamin", "B03BA01", "1 mg/ml", "ampoule", 5, "room", 11.40, 0, False, ["vitarubin", "nascobal", "cyanokit"]),
    ("cholecalciferol", "A11CC05", "1000 IU", "tablet", 60, "room", 12.60, 0, False, ["vi-de 3", "vigantol", "dekristol"]),
    ("calcium carbonate", "A12AA04", "500 mg", "chewable tablet", 60, "room", 13.90, 0, False, ["tums", "os-cal", "caltrate"]),
    ("magnesium", "A12CC", "300 mg", "granules sachet", 20, "room", 12.20, 0, False, ["magnesiocard", "magnesium diasporal"]),
    ("potassium chloride", "A12BA01", "600 mg", "prolonged-release tablet", 60, "room", 13.10, 0, False, ["kalium hausmann", "slow-k", "klor-con"]),
    ("xylometazoline", "R01AA07", "0.1 %", "nasal spray", 1, "room", 7.60, 0, False, ["otrivin", "otrivine", "nasengel"]),
    ("oxymetazoline", "R01AA05", "0.05 %", "nasal spray", 1, "room", 7.90, 0, False, ["afrin", "nasivin", "vicks sinex"]),
    ("dextromethorphan", "R05DA09", "15 mg", "lozenge", 20, "room", 9.40, 120, False, ["bexin", "robitussin", "delsym"]),
    ("acetylcysteine", "R05CB01", "600 mg", "effervescent tablet", 10, "room", 13.80, 600, False, ["fluimucil", "mucomyst", "acc"]),
    ("ambroxol", "R05CB06", "30 mg", "tablet", 20, "room", 9.70, 120, False, ["mucosolvan", "mucoangin", "lasolvan"]),
    ("latanoprost", "S01EE01", "0.005 %", "eye drops 2.5 ml", 1, "fridge", 28.90, 0, False, ["xalatan", "monoprost"]),
    ("timolol", "S01ED01", "0.5 %", "eye drops 5 ml", 1, "room", 13.40, 0, False, ["timoptic", "timoptol", "betimol"]),
    ("chloramphenicol", "S01AA01", "0.5 %", "eye drops 10 ml", 1, "fridge", 9.80, 0, False, ["chloromycetin", "spersanicol"]),
    ("tetanus toxoid", "J07AM01", "0.5 ml", "prefilled syringe", 1, "fridge", 32.60, 0, False, ["tetavax", "te anatoxal"]),
    ("influenza vaccine, inactivated or recombinant", "J07BB02", "0.5 ml", "prefilled syringe", 1, "fridge", 24.90, 0, False, ["fluarix", "influvac", "vaxigrip", "fluzone"]),
    ("hepatitis b vaccine", "J07BC01", "20 mcg", "prefilled syringe", 1, "fridge", 58.40, 0, False, ["engerix-b", "recombivax hb", "heplisav-b"]),
    ("varenicline", "N07BA03", "1 mg", "tablet", 56, "room", 89.70, 2, False, ["champix", "chantix"]),
    ("nicotine", "N07BA01", "2 mg", "chewing gum", 30, "room", 24.80, 0, False, ["nicorette", "nicotinell", "nicoderm"]),
    ("naloxone", "V03AB15", "1.8 mg", "nasal spray", 2, "room", 48.20, 0, False, ["narcan", "nyxoid", "evzio"]),
    ("epinephrine", "C01CA24", "0.3 mg", "auto-injector", 1, "room", 98.60, 0, False, ["epipen", "jext", "adrenaclick", "auvi-q"]),
    ("glucagon", "H04AA01", "1 mg", "injection kit", 1, "fridge", 66.30, 0, False, ["glucagen", "baqsimi", "gvoke"]),
]


# Rows in the demo catalog (whole product groups only).
LIMIT = 300


def check_digit(body: str) -> str:
    s = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return str((10 - s % 10) % 10)


def gtin(n: int) -> str:
    # GTIN-13 with GS1 prefix 952 (demonstrations and examples), as GTIN-14.
    body = f"952{n:09d}"
    return "0" + body + check_digit(body)


def title(s: str) -> str:
    return " ".join(w if any(c.isdigit() for c in w) else w.capitalize() for w in s.split(" "))


def generic_name(c: str, strength: str, form: str) -> str:
    name = c.split(",")[0]
    plural = form if form.endswith("s") or any(ch.isdigit() for ch in form) else form + "s"
    return f"{title(name)} {strength} {plural}"


def main() -> int:
    fixtures = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("RXEDGE_FIXTURES", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "fixtures"))
    variants: dict[str, set[str]] = {}
    canon: set[str] = set()
    with open(os.path.join(fixtures, "drugs", "drug_names.tsv"), encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            c = (row.get("canonical") or "").strip().lower()
            v = (row.get("variant") or "").strip().lower()
            if c:
                canon.add(c)
                variants.setdefault(c, set()).add(v)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["gtin", "name", "ingredients", "strength", "form", "pack_size", "atc", "controlled",
                  "storage", "price", "vat_class", "generics", "reorder_point", "max_daily_mg"])
    n = 1
    missing = []
    written = 0
    # Fridge lines first, so the cap never drops what the cold-chain demo needs.
    ordered = sorted(MEDICINES, key=lambda m: m[5] != "fridge")
    for (c, atc, strength, form, pack, storage, price, maxmg, controlled, brands) in ordered:
        if c not in canon:
            missing.append(c)
            continue
        found = [b for b in brands if b in variants.get(c, set())]
        rows = []
        generic_gtin = gtin(n); n += 1
        # The generic, then up to two brands found in the vocabulary, each the
        # others' generic equivalents; a second pack size when no brand is known.
        # A combination ("amoxicillin and clavulanic acid") lists each active
        # ingredient, so an allergy or interaction on either one is found.
        ingr = ";".join(c.split(" and "))
        rows.append([generic_gtin, generic_name(c, strength, form), ingr, price * 0.8, pack])
        for b in found[:1]:
            rows.append([gtin(n), f"{title(b)} {strength}", ingr, price, pack]); n += 1
        if not found:
            rows.append([gtin(n), generic_name(c, strength, form) + ", large pack", ingr, price * 0.8 * 2.6, pack * 3]); n += 1
        if written + len(rows) > LIMIT:
            break
        written += len(rows)
        all_g = [r[0] for r in rows]
        for (g, name, ingr, p, pk) in rows:
            others = ";".join(x for x in all_g if x != g)
            mx = "" if not maxmg or maxmg < 1 else str(int(maxmg))
            out.writerow([g, name, ingr, strength, form, pk, atc, "yes" if controlled else "no", storage,
                          f"{p:.2f}", "reduced", others, 5 if pk <= 30 else 3, mx])
    if missing:
        print("not in drug_names.tsv, skipped: " + ", ".join(missing), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
