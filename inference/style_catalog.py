"""The style catalogue: the named styles shared by the add-on's style text, the rule engine and the corpus.

Every entry has a stable integer id (the corpus stores ids, so entries are only ever appended, never
reordered or removed), a snake_case name, a human label, its StyleParams, strong keywords (synonyms) and
paraphrased text descriptions.

Held-out descriptions: the LAST three descriptions of every entry (``StyleEntry.held_out``) are reserved
for testing how learned text encoders generalise. They are never part of the text parser's vocabulary
(``style.style_from_text`` builds its keyword weights from names, synonyms and ``train_descriptions``
only) and corpus builders must not use them for training. The rule parser may still match them through
their keywords; that is fine.

The parameters are chosen so the styles differ measurably in motion statistics (hand speed and extent,
gesture rate, hold time) and in posture (head tilt, torso lean, shoulder height, handedness, rest pose),
so that no two entries are near-duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .style import PART_GROUPS, PART_NAMES, PartStyles, StyleParams

HELD_OUT_PER_STYLE = 3


@dataclass(frozen=True)
class StyleEntry:
    id: int
    name: str
    label: str
    params: StyleParams
    descriptions: tuple[str, ...]  # all paraphrases, the held-out ones last
    synonyms: tuple[str, ...] = field(default=())  # strong keywords for the text parser

    @property
    def held_out(self) -> tuple[str, ...]:
        """Descriptions reserved for testing (never in the parser's vocabulary or a training split)."""
        return self.descriptions[-HELD_OUT_PER_STYLE:]

    @property
    def train_descriptions(self) -> tuple[str, ...]:
        return self.descriptions[:-HELD_OUT_PER_STYLE]


def _p(se: float, te: float, fl: float, pw: float, rep: float, act: float, rate: float, tilt: float, lean: float,
       shoulder: float, hand: float, rest: str) -> StyleParams:
    return StyleParams(spatial_extent=se, temporal_extent=te, fluidity=fl, power=pw, repetition=rep,
                       activation=act, gesture_rate=rate, head_tilt=tilt, torso_lean=lean, shoulder_raise=shoulder,
                       handedness=hand, rest_pose=rest)


# (name, label, params, synonyms, descriptions: 9 in vocabulary + 3 held out, in that order)
_RAW: tuple[tuple[str, str, StyleParams, tuple[str, ...], tuple[str, ...]], ...] = (
    ("neutral", "neutral speaker",
     #  se    te    fl    pw    rep   act   rate  tilt   lean   shld  hand  rest
     _p(0.50, 0.50, 0.50, 0.50, 0.30, 0.50, 0.50, 0.00, 0.00, 0.00, 0.00, "sides"),
     ("neutral", "normal", "normally", "default", "plain", "ordinary", "standard", "average", "regular",
      "typical", "everyday"),
     ("a neutral speaker",
      "an ordinary person talking normally",
      "plain everyday conversation",
      "a regular speaker with no particular emotion",
      "speaks in a normal, natural way",
      "default delivery, nothing special",
      "an average person chatting",
      "standard conversational gestures",
      "a typical adult explaining something in a matter-of-fact way",
      # held out
      "just a normal person talking",
      "unremarkable speech on an ordinary day",
      "someone speaking without any strong feeling")),
    ("excited_keynote_speaker", "excited keynote speaker",
     _p(0.90, 0.22, 0.55, 0.75, 0.40, 0.95, 0.92, 0.08, 0.06, 0.10, 0.30, "sides"),
     ("excited", "exciting", "excitement", "excitedly", "energetic", "enthusiastic", "enthusiasm", "keynote",
      "hyped", "thrilled", "animated", "lively", "dynamic", "eager", "electrifying", "energy"),
     ("an excited keynote speaker",
      "an energetic presenter on a big stage",
      "an enthusiastic tech keynote",
      "hyped up speaker firing up the audience",
      "an animated and lively talk at a conference",
      "a thrilled speaker announcing a new product",
      "a dynamic, high-energy motivational speech",
      "an eager presenter who can't stand still",
      "an electrifying stage performance",
      # held out
      "a conference speaker bursting with energy",
      "pumped up presenter launching something new",
      "wildly enthusiastic talk in front of thousands")),
    ("calm_teacher", "calm teacher",
     _p(0.45, 0.72, 0.92, 0.20, 0.25, 0.40, 0.40, 0.03, 0.04, 0.00, 0.40, "front"),
     ("calm", "calmly", "teacher", "teaching", "patient", "patiently", "gentle", "gently", "soothing",
      "composed", "serene", "tranquil", "tutor", "instructor"),
     ("a calm teacher",
      "a patient teacher explaining slowly",
      "speaks calmly and gently to a class",
      "a composed instructor walking students through a lesson",
      "soothing, steady classroom explanation",
      "a kind tutor explaining step by step",
      "a serene teacher with measured gestures",
      "a gentle schoolteacher addressing pupils",
      "a tranquil trainer guiding a workshop",
      # held out
      "an unhurried educator helping a student understand",
      "a kindergarten teacher keeping everyone at ease",
      "quietly explains the homework to the class")),
    ("angry", "angry",
     _p(0.72, 0.18, 0.10, 0.95, 0.60, 0.85, 0.78, -0.10, 0.12, 0.35, 0.60, "sides"),
     ("angry", "anger", "angrily", "furious", "mad", "rage", "enraged", "outraged", "livid", "hostile",
      "irate", "fuming"),
     ("an angry man",
      "a furious customer complaining",
      "shouting in rage",
      "livid and hostile, jabbing the air",
      "an enraged person yelling at someone",
      "irate, fuming, aggressive gestures",
      "mad as hell and shouting",
      "angrily confronting a colleague",
      "an outraged person pounding the table",
      # held out
      "someone losing their temper",
      "seething with fury during an argument",
      "a heated, aggressive rant")),
    ("sad", "sad",
     _p(0.15, 0.85, 0.60, 0.10, 0.15, 0.15, 0.20, -0.30, 0.15, 0.00, 0.00, "sides"),
     ("sad", "sadly", "sadness", "unhappy", "depressed", "melancholy", "melancholic", "gloomy", "grieving",
      "grief", "mournful", "sorrowful", "heartbroken", "tearful"),
     ("a sad person",
      "speaking sadly about a loss",
      "a heartbroken friend telling bad news",
      "melancholy, downcast and quiet",
      "a grieving widow at a funeral",
      "gloomy and depressed",
      "a tearful, sorrowful confession",
      "an unhappy person with drooping shoulders",
      "a mournful voice, barely moving",
      # held out
      "someone who just lost a loved one",
      "speaks in a low, dejected manner",
      "a despondent person close to tears")),
    ("nervous", "nervous",
     _p(0.25, 0.20, 0.20, 0.35, 0.80, 0.70, 0.80, -0.05, 0.02, 0.50, 0.20, "front"),
     ("nervous", "nervously", "nerves", "nervousness", "fidgety", "fidgeting", "jittery", "jitters", "twitchy",
      "edgy", "restless"),
     ("a nervous speaker",
      "nervously fidgeting during a talk",
      "a jittery student giving a first talk",
      "twitchy, restless hands",
      "stage fright at a school play",
      "edgy and fidgety, rushing the words",
      "a nervous job candidate in an interview",
      "shaky, hurried gestures from nerves",
      "a first-time speaker with the jitters",
      # held out
      "a tense rookie speaking in public for the first time",
      "can't keep their hands still from nervousness",
      "an uneasy intern presenting to the bosses")),
    ("confident", "confident",
     _p(0.70, 0.50, 0.75, 0.60, 0.30, 0.60, 0.55, 0.10, -0.04, 0.00, 0.50, "sides"),
     ("confident", "confidently", "confidence", "assured", "poised", "assertive", "bold", "charismatic",
      "persuasive", "convincing"),
     ("a confident speaker",
      "self-assured and poised",
      "a charismatic salesperson pitching a deal",
      "speaks confidently with open gestures",
      "assertive and sure of herself",
      "a bold, persuasive argument",
      "a confident manager sharing results",
      "a poised interviewee with a clear answer",
      "an assured expert at ease on stage",
      # held out
      "someone who knows exactly what they're talking about",
      "secure and convincing delivery",
      "a self-confident entrepreneur pitching investors")),
    ("bored", "bored",
     _p(0.15, 0.80, 0.55, 0.10, 0.15, 0.10, 0.12, -0.08, -0.10, 0.00, 0.00, "behind"),
     ("bored", "boring", "boredom", "uninterested", "disinterested", "indifferent", "apathetic", "monotone",
      "dull", "unenthusiastic"),
     ("a bored person",
      "uninterested and monotone",
      "a bored teenager answering questions",
      "an indifferent clerk reading a script",
      "an apathetic, dull delivery",
      "couldn't care less",
      "an unenthusiastic employee at a meeting",
      "sighing with boredom",
      "a disinterested listener forced to talk",
      # held out
      "going through the motions without interest",
      "a cashier who finds the whole thing tedious",
      "flat, listless answers to routine questions")),
    ("tired_elder", "tired elder",
     _p(0.20, 0.95, 0.65, 0.08, 0.20, 0.20, 0.25, -0.20, 0.22, 0.15, 0.30, "front"),
     ("tired", "elder", "elderly", "old", "aged", "grandfather", "grandmother", "grandpa", "grandma", "senior",
      "frail", "weary", "exhausted"),
     ("a tired elder",
      "an old man telling a story slowly",
      "a frail elderly woman",
      "a weary grandfather speaking softly",
      "an exhausted senior citizen",
      "aged and tired, slow small movements",
      "a grandmother reminiscing",
      "old and worn out after a long life",
      "an elderly gentleman with stiff slow gestures",
      # held out
      "a ninety-year-old recalling the war",
      "an old lady resting after a long walk",
      "a weathered retiree talking about the past")),
    ("joyful_storyteller", "joyful storyteller",
     _p(0.85, 0.40, 0.85, 0.50, 0.35, 0.85, 0.75, 0.12, 0.03, 0.00, -0.20, "sides"),
     ("joyful", "joy", "happy", "happily", "cheerful", "glad", "delighted", "storyteller", "storytelling",
      "jolly", "merry", "upbeat", "smiling", "narrator"),
     ("a joyful storyteller",
      "a happy aunt telling stories to the family",
      "a cheerful narrator of a fairy tale",
      "delighted, warm and expressive storytelling",
      "a jolly uncle sharing funny anecdotes",
      "upbeat and smiling while telling a tale",
      "a glad, merry storyteller by the campfire",
      "happily recounting an adventure",
      "a joyful narrator bringing characters to life",
      # held out
      "a beaming host spinning an amusing yarn",
      "laughing while recounting a great holiday",
      "a warm, cheerful raconteur")),
    ("strict", "strict",
     _p(0.45, 0.35, 0.15, 0.80, 0.50, 0.50, 0.40, 0.06, -0.06, 0.05, 0.80, "behind"),
     ("strict", "strictly", "stern", "sternly", "severe", "rigid", "disciplinarian", "harsh", "authoritarian",
      "headmaster"),
     ("a strict teacher",
      "a stern headmaster",
      "severe and rigid",
      "a disciplinarian laying down the rules",
      "speaks sternly, with sharp precise gestures",
      "a harsh drill sergeant barking orders",
      "a strict parent setting the rules",
      "an authoritarian boss scolding staff",
      "a no-nonsense inspector listing violations",
      # held out
      "an unforgiving principal reprimanding a pupil",
      "cold, exacting and demanding",
      "a hard-nosed supervisor enforcing policy")),
    ("shy", "shy",
     _p(0.12, 0.60, 0.50, 0.15, 0.30, 0.25, 0.30, -0.25, 0.08, 0.45, -0.40, "front"),
     ("shy", "shyly", "timid", "bashful", "reserved", "introverted", "introvert", "meek", "sheepish"),
     ("a shy person",
      "a timid boy speaking quietly",
      "bashful and self-conscious",
      "an introverted student answering in class",
      "meek, avoiding eye contact",
      "a sheepish apology with small gestures",
      "shyly introducing herself",
      "a reserved guest at a party",
      "an introvert who barely moves",
      # held out
      "a quiet wallflower who hates attention",
      "blushing and hesitant when asked to speak",
      "an awkward newcomer mumbling a greeting")),
    ("sarcastic", "sarcastic",
     _p(0.50, 0.55, 0.40, 0.40, 0.20, 0.40, 0.35, 0.15, -0.08, 0.25, -0.60, "sides"),
     ("sarcastic", "sarcasm", "sarcastically", "ironic", "ironically", "mocking", "sardonic", "snarky", "wry",
      "cynical", "dismissive"),
     ("a sarcastic person",
      "dripping with sarcasm",
      "mocking, ironic commentary",
      "a snarky teenager rolling their eyes",
      "sardonic remarks with a smirk",
      "cynical and dismissive",
      "wry, ironic humour",
      "speaking sarcastically about a bad idea",
      "a sarcastic coworker making fun of the plan",
      # held out
      "oh great, another meeting, said with heavy irony",
      "a deadpan comedian mocking the audience",
      "a condescending, teasing tone")),
    ("proud", "proud",
     _p(0.60, 0.55, 0.70, 0.55, 0.25, 0.50, 0.45, 0.25, -0.15, 0.00, 0.60, "sides"),
     ("proud", "proudly", "pride", "triumphant", "boastful", "boasting", "smug", "victorious", "arrogant",
      "haughty"),
     ("a proud person",
      "proudly showing off an achievement",
      "a triumphant winner accepting a trophy",
      "boasting about a success",
      "chest out, chin up, full of pride",
      "smug and self-satisfied",
      "a victorious athlete after the final",
      "a haughty, arrogant aristocrat",
      "a proud parent at graduation",
      # held out
      "beaming with pride over their work",
      "a conceited champion bragging",
      "puffed up and pleased with themselves")),
    ("anxious", "anxious",
     _p(0.30, 0.30, 0.25, 0.30, 0.90, 0.60, 0.65, -0.15, 0.10, 0.75, 0.00, "front"),
     ("anxious", "anxiously", "anxiety", "worried", "worry", "worrying", "fearful", "afraid", "scared", "panicky",
      "apprehensive"),
     ("an anxious person",
      "worried about what might happen",
      "speaking anxiously with hunched, raised shoulders",
      "a fearful witness recounting events",
      "a scared person asking for help",
      "panicky and apprehensive",
      "an anxious patient talking to the doctor",
      "afraid and worrying out loud",
      "full of anxiety, shrinking into themself",
      # held out
      "someone dreading the outcome",
      "a troubled person expecting the worst",
      "frightened and on edge")),
    ("relaxed", "relaxed",
     _p(0.55, 0.65, 0.95, 0.25, 0.20, 0.35, 0.35, 0.00, -0.10, 0.00, 0.20, "sides"),
     ("relaxed", "relax", "relaxing", "laidback", "easygoing", "chill", "chilled", "casual", "casually",
      "mellow", "carefree", "lounging"),
     ("a relaxed person",
      "laid-back and casual",
      "chatting casually with friends",
      "easygoing and mellow",
      "a chill surfer telling a story",
      "a carefree conversation on a sunny afternoon",
      "a leisurely talk over coffee",
      "relaxed, loose and comfortable",
      "lounging while chatting with a buddy",
      # held out
      "totally at ease, no stress at all",
      "an unbothered friend hanging out on the couch",
      "kicking back and talking about the weekend")),
    ("formal_presenter", "formal presenter",
     _p(0.55, 0.50, 0.60, 0.55, 0.25, 0.50, 0.50, 0.03, 0.00, 0.05, 0.90, "front"),
     ("formal", "formally", "presenter", "presentation", "corporate", "business", "professional", "official",
      "briefing", "slides"),
     ("a formal presenter",
      "a corporate presentation to the board",
      "a professional business briefing",
      "an official delivering a formal statement",
      "a presenter walking through slides",
      "polished, formal delivery at a meeting",
      "a news anchor reading the report",
      "speaks formally to executives",
      "a consultant presenting quarterly figures",
      # held out
      "a diplomat addressing a summit",
      "a well-rehearsed sales deck in a boardroom",
      "a spokesperson giving a press conference")),
    ("passionate_activist", "passionate activist",
     _p(0.95, 0.30, 0.35, 0.95, 0.70, 0.95, 0.95, 0.05, 0.15, 0.30, 0.60, "sides"),
     ("passionate", "passionately", "passion", "activist", "protest", "protester", "rally", "fiery",
      "impassioned", "fervent", "campaigner", "rousing"),
     ("a passionate activist",
      "a fiery speech at a protest rally",
      "an impassioned plea for justice",
      "a fervent campaigner rousing the crowd",
      "a protester demanding change",
      "passionately arguing for climate action",
      "a rousing call to action",
      "an activist chanting slogans",
      "a union organiser firing up workers",
      # held out
      "a crusader speaking out against injustice",
      "an idealist pleading for change at a march",
      "a heartfelt, intense cause-driven speech")),
    ("thoughtful_professor", "thoughtful professor",
     _p(0.40, 0.75, 0.70, 0.30, 0.20, 0.35, 0.30, -0.05, 0.05, 0.00, 0.70, "behind"),
     ("thoughtful", "thoughtfully", "professor", "pensive", "reflective", "contemplative", "lecturer",
      "academic", "scholar", "philosopher", "pondering"),
     ("a thoughtful professor",
      "a pensive academic weighing ideas",
      "a reflective lecture on philosophy",
      "a contemplative scholar thinking aloud",
      "a professor pondering a hard question",
      "thoughtfully explaining a theory",
      "a philosopher musing about meaning",
      "a lecturer choosing words carefully",
      "a considered, deliberate university lecture",
      # held out
      "an intellectual mulling over a problem",
      "a wise mentor reasoning through an argument",
      "a researcher carefully considering each point")),
    ("playful_child", "playful child",
     _p(0.80, 0.15, 0.60, 0.45, 0.60, 0.95, 0.88, 0.10, 0.00, 0.15, -0.50, "sides"),
     ("playful", "playfully", "child", "kid", "childish", "silly", "goofy", "toddler", "mischievous"),
     ("a playful child",
      "a silly kid being goofy",
      "a bubbly little girl telling her parents about her day",
      "childish, bouncy gestures",
      "a kid playing pretend",
      "playfully teasing a sibling",
      "giggling children acting out a game",
      "a mischievous boy showing off a toy",
      "a hyperactive child who can't sit still",
      # held out
      "a six-year-old describing a dream",
      "a cheeky youngster fooling around",
      "a bouncing toddler chattering away")),
    ("sleepy", "sleepy",
     _p(0.08, 1.00, 0.80, 0.02, 0.10, 0.05, 0.08, -0.35, 0.10, 0.00, 0.00, "sides"),
     ("sleepy", "sleepily", "drowsy", "yawning", "yawn", "asleep", "sleep", "groggy", "dozing", "sluggish"),
     ("a sleepy person",
      "drowsy and yawning",
      "half asleep in the early morning",
      "groggy after waking up",
      "dozing off while talking",
      "sluggish and sleepy late at night",
      "barely awake, eyes closing",
      "a drowsy student in the first class",
      "sleepily mumbling",
      # held out
      "someone who badly needs a nap",
      "nodding off at their desk",
      "struggling to stay awake after a night shift")),
    ("frustrated", "frustrated",
     _p(0.60, 0.28, 0.20, 0.80, 0.75, 0.70, 0.62, -0.12, 0.08, 0.50, 0.40, "front"),
     ("frustrated", "frustration", "frustrating", "exasperated", "exasperation", "annoyed", "irritated",
      "aggravated", "impatient", "fed"),
     ("a frustrated person",
      "exasperated by the same mistake again",
      "fed up with excuses",
      "annoyed and impatient",
      "an irritated driver stuck in traffic",
      "throwing up hands in frustration",
      "an aggravated customer on hold for an hour",
      "a frustrated coach after a lost game",
      "exasperation at a broken computer",
      # held out
      "at the end of their rope with a bug",
      "grumbling about another delay",
      "someone whose patience has run out")),
    ("surprised", "surprised",
     _p(0.80, 0.20, 0.40, 0.70, 0.20, 0.75, 0.58, 0.20, -0.12, 0.60, 0.00, "sides"),
     ("surprised", "surprise", "surprising", "astonished", "amazed", "shocked", "stunned", "startled",
      "astounded", "wow", "disbelief"),
     ("a surprised person",
      "astonished by the news",
      "amazed and shocked",
      "stunned, jaw dropping",
      "startled by an unexpected guest",
      "wow, can you believe it",
      "in complete disbelief",
      "an astounded audience member reacting",
      "a surprised reaction to a plot twist",
      # held out
      "caught completely off guard",
      "gasping at a sudden announcement",
      "blown away by what just happened")),
    ("humble", "humble",
     _p(0.25, 0.60, 0.70, 0.20, 0.20, 0.30, 0.28, -0.18, 0.12, 0.10, 0.10, "front"),
     ("humble", "humbly", "modest", "modestly", "humility", "unassuming", "grateful", "thankful",
      "apologetic"),
     ("a humble person",
      "modestly accepting praise",
      "a grateful volunteer thanking everyone",
      "unassuming and self-effacing",
      "speaks humbly about their success",
      "a thankful winner giving credit to the team",
      "quiet humility",
      "an apologetic employee owning a mistake",
      "a modest monk sharing wisdom",
      # held out
      "downplaying their own achievements",
      "a gracious guest who doesn't want attention",
      "softly thanking the people who helped")),
    ("commanding_leader", "commanding leader",
     _p(0.82, 0.45, 0.40, 0.90, 0.35, 0.65, 0.48, 0.12, -0.05, 0.00, 1.00, "sides"),
     ("commanding", "command", "leader", "general", "captain", "chief", "authoritative", "dominant", "commander",
      "decisive", "president"),
     ("a commanding leader",
      "a general giving orders to the troops",
      "an authoritative captain directing the team",
      "a dominant, powerful chief executive",
      "a decisive commander taking charge",
      "a president addressing the nation",
      "a forceful leader demanding results",
      "commanding the room with big, slow gestures",
      "a head of state speaking with authority",
      # held out
      "a CEO laying out the strategy to the whole company",
      "an admiral briefing the fleet",
      "in charge and unmistakably in control")),
)

STYLE_CATALOG: tuple[StyleEntry, ...] = tuple(
    StyleEntry(i, name, label, params, descriptions, synonyms)
    for i, (name, label, params, synonyms, descriptions) in enumerate(_RAW)
)
STYLE_NAMES: tuple[str, ...] = tuple(e.name for e in STYLE_CATALOG)
_BY_NAME: dict[str, StyleEntry] = {e.name: e for e in STYLE_CATALOG}
# Names of engine v1's styles, and the labels with spaces, still select their entries.
ALIASES: dict[str, str] = {
    "excited": "excited_keynote_speaker", "calm": "calm_teacher", "tired": "tired_elder",
    "joyful": "joyful_storyteller", **{e.label: e.name for e in STYLE_CATALOG},
}


def style_by_name(name: str) -> StyleEntry:
    """The catalogue entry called ``name`` (snake_case name, its label, or an engine-v1 alias)."""
    key = name.strip().lower()
    key = ALIASES.get(key, ALIASES.get(key.replace("_", " "), key.replace(" ", "_").replace("-", "_")))
    try:
        return _BY_NAME[key]
    except KeyError:
        raise KeyError(f"No style named {name!r}; known: {', '.join(STYLE_NAMES)}") from None


def style_by_id(style_id: int) -> StyleEntry:
    if not 0 <= int(style_id) < len(STYLE_CATALOG):
        raise KeyError(f"No style with id {style_id}; ids are 0..{len(STYLE_CATALOG) - 1}")
    return STYLE_CATALOG[int(style_id)]


def _entry(ref: str | int | StyleEntry) -> StyleEntry:
    if isinstance(ref, StyleEntry):
        return ref
    return style_by_id(ref) if isinstance(ref, int) else style_by_name(ref)


def part_style_ids(default: str | int, **parts: str | int) -> dict[str, int]:
    """Resolved style id of every body part (PART_NAMES order). ``parts`` keys are part names or the groups
    of PART_GROUPS ("arms" = both arms and hands, "hands", "upper_body", ...); unset parts get ``default``."""
    ids = dict.fromkeys(PART_NAMES, _entry(default).id)
    for key, ref in parts.items():
        targets = PART_GROUPS.get(key, (key,))
        for part in targets:
            if part not in ids:
                raise KeyError(f"Unknown body part {key!r}; parts: {', '.join(PART_NAMES)}; "
                               f"groups: {', '.join(PART_GROUPS)}")
            ids[part] = _entry(ref).id
    return ids


def part_styles(default: str | int, **parts: str | int) -> PartStyles:
    """PartStyles from catalogue names or ids, e.g. ``part_styles("neutral", arms="angry", head="sad")``."""
    ids = part_style_ids(default, **parts)
    base = _entry(default).params
    return PartStyles(default=base, **{p: STYLE_CATALOG[i].params for p, i in ids.items()
                                       if STYLE_CATALOG[i].params != base})
