"""Varied English sentences for corpus speech, deterministic for a numpy Generator.

Templates with slots filled from word lists: statements, questions, negations, lists, numbers, short
exclamations and long multi-clause sentences, about work, travel, science, family, food, plans and stories.
They are written to carry the words the gesture lexicon reacts to (deictic: I, you, this, there; iconic: big,
small, round, up, between, high, wide; metaphoric: idea, all, together, stop, maybe; affirmation and
negation: yes, sure, no, never, don't), so the corpus shows each lexical gesture in many contexts.

Only ASCII letters, digits, apostrophes and plain punctuation: what espeak speaks one word event per token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

# Words the gesture lexicon reacts to (inference/rule_engine.py WORD_TO_GESTURE, plus the iconic and
# metaphoric words the corpus engine adds). Tests check that every one of them shows up.
LEXICON_WORDS: frozenset[str] = frozenset(
    # deictic
    "i me my myself mine i'm i've i'll i'd you your yours yourself you're you've you'll this here these there "
    "that those "
    # iconic
    "big huge large enormous massive whole small little tiny bit round up down between high low wide tall "
    "narrow long short around "
    # metaphoric
    "idea think thought imagine remember question all everything together connect combine join stop wait hold "
    "maybe perhaps possibly probably "
    # affirmation / negation
    "yes yeah sure absolutely definitely exactly right no not never nothing don't can't won't nobody none "
    "nope".split()
)

# --- vocabulary ------------------------------------------------------------------------------------------

# topic -> (singular nouns, plural nouns, places, activities (verb phrases, base form))
TOPICS: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {
    "work": (
        "project meeting report deadline budget client plan presentation office manager schedule contract "
        "proposal spreadsheet interview".split(),
        "projects meetings reports deadlines clients plans slides offices colleagues numbers emails".split(),
        "the office|the meeting room|the warehouse|the main building|the conference".split("|"),
        "finish the report|call the client|fix the budget|move the deadline|hire someone new|"
        "rewrite the proposal|present the numbers|clean up the spreadsheet".split("|"),
    ),
    "travel": (
        "trip flight train hotel city beach mountain map road station island border suitcase ticket bridge "
        "tunnel".split(),
        "trips flights trains hotels cities beaches mountains maps roads tickets bridges islands".split(),
        "the station|the airport|the old town|the coast|the mountains|the harbour|the border".split("|"),
        "book the flight|pack the suitcase|find the hotel|take the train|cross the bridge|"
        "climb the mountain|rent a car|read the map".split("|"),
    ),
    "science": (
        "experiment theory result sample telescope molecule planet model lab signal cell particle "
        "microscope equation orbit".split(),
        "experiments theories results samples molecules planets models signals cells particles stars "
        "measurements".split(),
        "the lab|the observatory|the field station|the clean room|the archive".split("|"),
        "run the experiment|check the results|measure the signal|test the theory|repeat the measurement|"
        "build a better model|publish the paper|count the cells".split("|"),
    ),
    "family": (
        "sister brother mother father grandmother grandfather cousin uncle aunt baby neighbour son "
        "daughter family house".split(),
        "kids parents cousins grandparents neighbours twins friends relatives sisters brothers".split(),
        "the house|the garden|my parents' place|the park|the school|the living room".split("|"),
        "visit the grandparents|pick up the kids|paint the house|call my mother|fix the fence|"
        "plan the reunion|walk the dog|clean the attic".split("|"),
    ),
    "food": (
        "soup bread cake pizza salad coffee recipe kitchen dinner breakfast market pie sandwich "
        "restaurant menu".split(),
        "apples tomatoes cookies noodles onions lemons potatoes spices plates recipes eggs".split(),
        "the kitchen|the market|the restaurant|the bakery|the cafe|the food stall".split("|"),
        "bake the bread|cook dinner|try the soup|order a pizza|chop the onions|make coffee|"
        "set the table|follow the recipe".split("|"),
    ),
    "plans": (
        "weekend holiday garden party wedding course concert birthday move trip festival "
        "launch".split(),
        "plans holidays parties weddings courses concerts tickets guests invitations".split(),
        "the city|the lake|the concert hall|the garden|the new flat|the beach house".split("|"),
        "book the tickets|invite the guests|plant the garden|learn to swim|start the course|"
        "save some money|paint the new flat|plan the party".split("|"),
    ),
    "stories": (
        "dragon castle king queen forest river village storm ship stranger door letter key "
        "wizard treasure".split(),
        "dragons castles soldiers villagers ships letters keys wolves stars doors".split(),
        "the castle|the forest|the old village|the river bank|the tower|the cave|the harbour".split("|"),
        "open the door|cross the river|find the treasure|read the letter|climb the tower|"
        "wake the king|follow the stranger|ring the bell".split("|"),
    ),
}

PEOPLE = ("my sister|my brother|my boss|the teacher|our neighbour|the doctor|the captain|my friend|the manager|"
          "your cousin|the old man|the girl next door|the pilot|the chef|the scientist").split("|")
PEOPLE_PL = ("my parents|the kids|our neighbours|the students|the engineers|the villagers|my friends|"
             "the others|the guests|those people").split("|")

SIZE_BIG = "big huge large enormous massive tall wide long high".split()
SIZE_SMALL = "small little tiny short narrow low".split()
SHAPE = "round flat square heavy light old new strange beautiful simple bright dark".split()
ADJ = SIZE_BIG + SIZE_SMALL + SHAPE
EVAL = ("great|wonderful|terrible|strange|brilliant|interesting|important|difficult|easy|funny|amazing|"
        "right|wrong|fine|perfect").split("|")
INTENSIFIER = "really|very|so|quite|pretty|incredibly|a bit|a little".split("|")

# (base, past, third person singular)
VERBS = [tuple(v.split("/")) for v in (
    "see/saw/sees find/found/finds build/built/builds open/opened/opens bring/brought/brings "
    "move/moved/moves take/took/takes lose/lost/loses change/changed/changes show/showed/shows "
    "check/checked/checks fix/fixed/fixes carry/carried/carries need/needed/needs like/liked/likes "
    "paint/painted/paints pick/picked/picks hold/held/holds join/joined/joins connect/connected/connects "
    "combine/combined/combines remember/remembered/remembers imagine/imagined/imagines"
).split()]
MOTION = ("went up|came down|went up and down|rolled around|moved between the two|went all the way up|"
          "fell down|climbed up high|stayed low|spread out wide|went round and round").split("|")
THINK = "think|believe|guess|feel|suppose|imagine|remember|know".split("|")
THINK_3S = {"think": "thinks", "believe": "believes", "guess": "guesses", "feel": "feels", "suppose": "supposes",
            "imagine": "imagines", "remember": "remembers", "know": "knows"}
HEDGE = "maybe|perhaps|possibly|probably|I think|I guess|honestly|actually|of course|apparently".split("|")
YES = "Yes|Yeah|Sure|Absolutely|Definitely|Exactly|Right|Of course|Yes, absolutely|Sure, definitely".split("|")
NO = "No|Nope|No, never|No, not really|Not at all|Never|No, no|Absolutely not".split("|")
CONNECT = ("because|but|and then|so|while|although|when|until|after|before|since|and so|even though|"
           "which means").split("|")
UNITS = "minutes|hours|days|weeks|months|years|kilometres|metres|people|dollars|pages|steps|times".split("|")
TIME = ("yesterday|last week|this morning|on Monday|last year|a while ago|this afternoon|tonight|tomorrow|"
        "next week|today|right now|later|every day").split("|")
PAST_TIME = "yesterday|last week|this morning|on Monday|last year|a while ago|this afternoon".split("|")
FUTURE_TIME = "tomorrow|next week|tonight|later|on Friday|next year|this weekend|soon".split("|")
SUBJ_1 = ("I", "we", "you", "they")  # take the base verb form

Gen = np.random.Generator


def _pick(rng: Gen, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _two(rng: Gen, items: Sequence[str]) -> tuple[str, str]:
    i, j = rng.choice(len(items), size=2, replace=False)
    return items[int(i)], items[int(j)]


def _chance(rng: Gen, p: float) -> bool:
    return bool(rng.random() < p)


# --- phrases -----------------------------------------------------------------------------------------------


class _Ctx:
    """The topic a sentence is about."""

    def __init__(self, rng: Gen, topic: str | None = None) -> None:
        self.topic = topic or _pick(rng, list(TOPICS))
        self.nouns, self.plurals, self.places, self.activities = TOPICS[self.topic]


def _np(rng: Gen, c: _Ctx, *, plural: bool | None = None, adj_p: float = 0.45) -> str:
    """A noun phrase: determiner, maybe an adjective, a topic noun."""
    if plural is None:
        plural = _chance(rng, 0.3)
    adj = (_pick(rng, ADJ) + " ") if _chance(rng, adj_p) else ""
    if plural:
        det = _pick(rng, ("these", "those", "the", "my", "your", "our", "all the", "all of my", "some of the",
                          "both", "all these"))
        return f"{det} {adj}{_pick(rng, c.plurals)}"
    det = _pick(rng, ("the", "this", "that", "my", "your", "our", "the whole", "a", "a", "their", "her", "his"))
    noun = _pick(rng, c.nouns)
    if det == "a" and (adj or noun)[0] in "aeiou":
        det = "an"
    return f"{det} {adj}{noun}"


def _subject(rng: Gen) -> tuple[str, bool]:
    """(subject, takes the third-person -s form)."""
    r = rng.random()
    if r < 0.45:
        return _pick(rng, SUBJ_1), False
    if r < 0.6:
        return _pick(rng, ("she", "he", "it")), True
    if r < 0.85:
        return _pick(rng, PEOPLE), True
    return _pick(rng, PEOPLE_PL), False


def _clause(rng: Gen, c: _Ctx) -> str:
    """A simple clause, in one of several tenses."""
    subj, third = _subject(rng)
    base, past, s3 = VERBS[int(rng.integers(len(VERBS)))]
    obj = _np(rng, c)
    kind = int(rng.integers(9))
    if kind == 0:
        return f"{subj} {past} {obj} {_pick(rng, PAST_TIME)}"
    if kind == 1:
        return f"{subj} {s3 if third else base} {obj}"
    if kind == 2:
        modal = _pick(rng, ("can", "could", "should", "will", "might", "can't", "won't", "would", "must"))
        return f"{subj} {modal} {base} {obj}"
    if kind == 3:
        adv = _pick(rng, ("don't", "didn't", "never", "really", "always", "sometimes"))
        if adv == "don't":
            return f"{subj} {'doesn' + chr(39) + 't' if third else adv} {base} {obj}"
        return f"{subj} {adv} {base if adv == 'didn' + chr(39) + 't' or not third else s3} {obj}"
    if kind == 4:
        be = "is" if third else ("am" if subj == "I" else "are")
        going = _pick(rng, ("going to", "trying to", "about to", "not going to"))
        return f"{subj} {be} {going} {_pick(rng, c.activities)}"
    if kind == 5:
        if _chance(rng, 0.6):
            return f"{_np(rng, c, plural=False, adj_p=0.2)} was {_pick(rng, INTENSIFIER)} {_pick(rng, ADJ + EVAL)}"
        be = "was" if third or subj == "I" else "were"
        return f"{subj} {be} {_pick(rng, ('in', 'near', 'outside', 'behind', 'at'))} {_pick(rng, c.places)}"
    if kind == 6:
        return f"{_np(rng, c)} {_pick(rng, MOTION)}"
    if kind == 7:
        return f"{subj} {_pick(rng, ('had to', 'wanted to', 'forgot to', 'tried to', 'decided to'))} " \
               f"{_pick(rng, c.activities)}"
    have = "has" if third else "have"
    return f"{subj} {have} {_pick(rng, ('never', 'already', 'just', 'always', 'not'))} {_participle(past)} {obj}"


_IRREGULAR_PARTICIPLE = {"saw": "seen", "took": "taken", "brought": "brought", "built": "built", "found": "found",
                         "lost": "lost", "held": "held"}


def _participle(past: str) -> str:
    return _IRREGULAR_PARTICIPLE.get(past, past)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _finish(s: str, end: str = ".") -> str:
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\bi\b", "I", s)
    s = re.sub(r"\bi'(m|ve|ll|d)\b", r"I'\1", s)
    s = re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", s)
    return _cap(s) + end


def _done(s: str) -> str:
    """_finish a sentence written with its end mark."""
    return _finish(s[:-1], s[-1])


# --- sentence kinds ------------------------------------------------------------------------------------------


def _statement(rng: Gen, c: _Ctx) -> str:
    r = int(rng.integers(6))
    if r == 0:
        return _finish(_clause(rng, c))
    if r == 1:
        return _finish(f"{_pick(rng, HEDGE)}, {_clause(rng, c)}")
    if r == 2:
        who, third = _subject(rng)
        verb = _pick(rng, THINK)
        return _finish(f"{who} {THINK_3S[verb] if third else verb} that {_clause(rng, c)}")
    if r == 3:
        who = _pick(rng, SUBJ_1 + ("she", "he") + tuple(PEOPLE))
        modal = _pick(rng, ("will", "might", "won't", "should", "could", "can't"))
        return _finish(f"{_pick(rng, FUTURE_TIME)}, {who} {modal} {_pick(rng, c.activities)}")
    if r == 4:
        return _finish(f"{_pick(rng, ('I', 'we', 'you'))} "
                       f"{_pick(rng, ('really', 'finally', 'probably', 'definitely', 'absolutely'))} "
                       f"{_pick(rng, ('need to', 'want to', 'have to', 'should'))} {_pick(rng, c.activities)}")
    return _finish(f"{_np(rng, c, plural=False)} is {_pick(rng, INTENSIFIER)} {_pick(rng, EVAL + ADJ)}")


def _deictic(rng: Gen, c: _Ctx) -> str:
    n, p = _pick(rng, c.nouns), _pick(rng, c.plurals)
    options: list[Callable[[], str]] = [
        lambda: f"Look at this {n}, it's right here.",
        lambda: f"That {n} over there is {_pick(rng, ADJ + EVAL)}.",
        lambda: f"These {p} are {_pick(rng, EVAL)}, but those {_pick(rng, c.plurals)} are {_pick(rng, EVAL)}.",
        lambda: f"I'm here, and you're there, so {_clause(rng, c)}.",
        lambda: f"You'll see it over there, next to {_np(rng, c)}.",
        lambda: f"This {n} is mine, and that {_pick(rng, c.nouns)} is yours.",
        lambda: f"I've put {_np(rng, c)} here for you.",
        lambda: f"I'd like you to take this {n} yourself.",
        lambda: f"You've got to see this {n} for yourself.",
        lambda: f"I'll do it myself, right here, {_pick(rng, FUTURE_TIME)}.",
        lambda: f"Is that your {n}, or is it mine?",
        lambda: f"Those {p} over there belong to me.",
        lambda: f"Give me that {n}, please.",
        lambda: f"Here are the {p} you asked for.",
        lambda: f"You're the one who {_pick(rng, ('found', 'lost', 'fixed', 'built', 'opened'))} this {n}.",
        lambda: f"My {n} is there, and your {_pick(rng, c.nouns)} is here.",
    ]
    return _done(options[int(rng.integers(len(options)))]())


def _iconic(rng: Gen, c: _Ctx) -> str:
    n, n2 = _two(rng, c.nouns)
    big, small = _pick(rng, SIZE_BIG), _pick(rng, SIZE_SMALL)
    options: list[Callable[[], str]] = [
        lambda: f"The {n} was {_pick(rng, INTENSIFIER)} {big}, about this "
                f"{_pick(rng, ('big', 'high', 'wide', 'tall', 'long'))}.",
        lambda: f"The {n} went up, and then it came down {_pick(rng, ('slowly', 'fast', 'again', 'all at once'))}.",
        lambda: f"The {n} is somewhere between the {n2} and {_np(rng, c, adj_p=0.0)}.",
        lambda: f"It was a {small} {n}, just a little bit "
                f"{_pick(rng, ('bigger', 'smaller', 'higher', 'lower', 'wider'))} than {_np(rng, c)}.",
        lambda: f"The {n} is round, like a ball, and {_pick(rng, ('huge', 'tiny', 'heavy', 'light'))}.",
        lambda: f"Put the {n} down low, not up high.",
        lambda: f"It's a massive {n}, with a tiny {n2} inside.",
        lambda: f"The whole {n} is {_pick(rng, ('wide', 'tall', 'long', 'narrow', 'short'))} and "
                f"{_pick(rng, ('enormous', 'large', 'low', 'round'))}.",
        lambda: f"{_pick(rng, ('prices', 'the numbers', 'the costs', 'sales', 'the water'))} went "
                f"{_pick(rng, ('up', 'down'))} a bit {_pick(rng, TIME)}, then {_pick(rng, ('up', 'down'))} a lot.",
        lambda: f"{_np(rng, c)} {_pick(rng, MOTION)} and then {_pick(rng, MOTION)}.",
        lambda: f"There's a {big} gap between {_np(rng, c)} and {_np(rng, c)}.",
        lambda: f"The {n} was tall and narrow at the top, but wide and round down below.",
    ]
    return _done(options[int(rng.integers(len(options)))]())


def _metaphoric(rng: Gen, c: _Ctx) -> str:
    n, n2 = _two(rng, c.nouns)
    options: list[Callable[[], str]] = [
        lambda: f"I have an idea about {_np(rng, c)}.",
        lambda: f"Let's bring everything together and {_pick(rng, c.activities)}.",
        lambda: f"We need to connect the {n} with the {n2}.",
        lambda: f"Think about the whole question of {_np(rng, c)} for a moment.",
        lambda: f"Imagine all the {_pick(rng, c.plurals)} working together.",
        lambda: f"Remember the {n}? That was the idea all along.",
        lambda: f"If we combine the {n} and the {n2}, {_clause(rng, c)}.",
        lambda: f"Maybe we should join {_pick(rng, PEOPLE_PL)} and {_pick(rng, c.activities)}.",
        lambda: f"Perhaps it's time to {_pick(rng, c.activities)}.",
        lambda: f"Everything is connected, the {n}, the {n2}, all of it.",
        lambda: f"The question is whether {_clause(rng, c)}.",
        lambda: f"I thought about it, and {_pick(rng, HEDGE)} {_clause(rng, c)}.",
        lambda: f"It's probably {_pick(rng, EVAL)}, but it's possibly {_pick(rng, EVAL)} too.",
        lambda: f"Stop, wait a second, hold on, {_clause(rng, c)}.",
        lambda: f"Wait, {_clause(rng, c)}?",
        lambda: f"Just hold the {n} for a moment and wait.",
        lambda: f"We have to stop {_pick(rng, ('talking', 'worrying', 'waiting', 'guessing'))} and "
                f"{_pick(rng, c.activities)}.",
        lambda: f"The main idea is to put {_np(rng, c)} and {_np(rng, c)} all together.",
    ]
    return _done(options[int(rng.integers(len(options)))]())


def _affirm(rng: Gen, c: _Ctx) -> str:
    options: list[Callable[[], str]] = [
        lambda: f"{_pick(rng, YES)}, {_clause(rng, c)}.",
        lambda: f"{_pick(rng, YES)}, that's exactly right.",
        lambda: f"Sure, I'd love to {_pick(rng, c.activities)}.",
        lambda: f"Yeah, you're right about {_np(rng, c)}.",
        lambda: f"Absolutely, we should definitely {_pick(rng, c.activities)}.",
        lambda: f"Yes, yes, that's the {_pick(rng, c.nouns)} I meant.",
        lambda: f"That's right, I remember {_np(rng, c)} now.",
        lambda: f"Exactly, and that's why {_clause(rng, c)}.",
    ]
    return _done(options[int(rng.integers(len(options)))]())


def _negation(rng: Gen, c: _Ctx) -> str:
    n = _pick(rng, c.nouns)
    options: list[Callable[[], str]] = [
        lambda: f"No, I don't think {_pick(rng, ('that is right', 'it is ' + _pick(rng, EVAL)))}, {_clause(rng, c)}"
                .replace(" is ", "'s ", 1) + ".",
        lambda: f"{_pick(rng, NO)}, {_clause(rng, c)}.",
        lambda: f"I can't {_pick(rng, c.activities)} {_pick(rng, TIME)}.",
        lambda: f"Nobody {_pick(rng, ('saw', 'found', 'opened', 'checked', 'moved'))} the {n}.",
        lambda: f"There's nothing wrong with {_np(rng, c)}.",
        lambda: f"None of the {_pick(rng, c.plurals)} {_pick(rng, ('worked', 'arrived', 'were ready', 'made sense'))}.",
        lambda: f"We won't {_pick(rng, c.activities)}, not {_pick(rng, FUTURE_TIME)}.",
        lambda: f"Nope, that's not {_pick(rng, ('my', 'your', 'the', 'our'))} {n}.",
        lambda: f"I never said {_clause(rng, c)}.",
        lambda: f"It's not {_pick(rng, ADJ)}, and it's not {_pick(rng, EVAL)} either.",
        lambda: f"You don't have to {_pick(rng, c.activities)}.",
        lambda: f"No, no, never again, not with {_np(rng, c)}.",
        lambda: f"I don't know, and I can't remember {_np(rng, c)}.",
        lambda: f"Don't {_pick(rng, ('touch', 'move', 'open', 'lose', 'forget'))} the {n}!",
    ]
    return _done(options[int(rng.integers(len(options)))]())


def _question(rng: Gen, c: _Ctx) -> str:
    n = _pick(rng, c.nouns)
    base, past, _s3 = VERBS[int(rng.integers(len(VERBS)))]
    options: list[Callable[[], str]] = [
        lambda: f"Did you {base} {_np(rng, c)}?",
        lambda: f"What do you think about {_np(rng, c)}?",
        lambda: f"Is this the {n} you wanted?",
        lambda: f"Where did you put my {n}?",
        lambda: f"Why would {_pick(rng, PEOPLE)} {base} {_np(rng, c)}?",
        lambda: f"Can you {_pick(rng, c.activities)} {_pick(rng, FUTURE_TIME)}?",
        lambda: f"Have you ever seen a {_pick(rng, SIZE_BIG + SIZE_SMALL)} {n}?",
        lambda: f"How {_pick(rng, ('big', 'long', 'high', 'wide', 'far', 'old', 'tall'))} is "
                f"{_np(rng, c, plural=False)}?",
        lambda: f"Who {past} {_np(rng, c)}?",
        lambda: f"Are you sure about {_np(rng, c)}?",
        lambda: f"Don't you think {_clause(rng, c)}?",
        lambda: f"Isn't that {_pick(rng, c.nouns)} {_pick(rng, EVAL)}?",
        lambda: f"Could we maybe {_pick(rng, c.activities)} together?",
        lambda: f"So what's the big question about {_np(rng, c)}?",
        lambda: f"Do you remember {_np(rng, c)}?",
        lambda: f"You did what with {_np(rng, c)}?",
    ]
    return options[int(rng.integers(len(options)))]()


def _listing(rng: Gen, c: _Ctx) -> str:
    acts = [str(a) for a in rng.choice(c.activities, size=3, replace=False)]
    r = int(rng.integers(5))
    if r == 0:
        return _finish(f"First, we {acts[0]}, second, we {acts[1]}, and third, we {acts[2]}")
    if r == 1:
        return _finish(f"We need {_np(rng, c)}, {_np(rng, c)}, and {_np(rng, c)}")
    if r == 2:
        items = [str(x) for x in rng.choice(c.plurals, size=3, replace=False)]
        return _finish(f"There were {items[0]}, {items[1]}, {items[2]}, all of them {_pick(rng, ADJ + EVAL)}")
    if r == 3:
        return _finish(f"One, {acts[0]}. Two, {acts[1]}. And three, {acts[2]}")
    return _finish(f"{_pick(rng, SUBJ_1)} can {acts[0]}, or {acts[1]}, or maybe {acts[2]}")


def _number(rng: Gen) -> str:
    r = rng.random()
    if r < 0.5:
        return str(int(rng.integers(2, 100)))
    if r < 0.7:
        return str(int(rng.integers(100, 10000)))
    if r < 0.85:
        return f"{int(rng.integers(1, 20))}.{int(rng.integers(1, 10))}"
    return str(int(rng.integers(1900, 2031)))


def _numbers(rng: Gen, c: _Ctx) -> str:
    n = _pick(rng, c.nouns)
    options: list[Callable[[], str]] = [
        lambda: f"It took {_number(rng)} {_pick(rng, UNITS)} to {_pick(rng, c.activities)}.",
        lambda: f"There were {int(rng.integers(2, 1000))} {_pick(rng, c.plurals)} in {_pick(rng, c.places)}.",
        lambda: f"In {int(rng.integers(1900, 2031))}, {_clause(rng, c)}.",
        lambda: f"The {n} costs {int(rng.integers(2, 500))} dollars, not {int(rng.integers(2, 500))}.",
        lambda: f"About {int(rng.integers(2, 100))} percent of the {_pick(rng, c.plurals)} were "
                f"{_pick(rng, ADJ + EVAL)}.",
        lambda: f"We waited {int(rng.integers(2, 60))} minutes, and then {_clause(rng, c)}.",
        lambda: f"It's {_number(rng)} {_pick(rng, UNITS)} long, maybe {_number(rng)}.",
        lambda: f"Only {int(rng.integers(2, 20))} of the {_pick(rng, c.plurals)} were left.",
    ]
    return _done(options[int(rng.integers(len(options)))]())


EXCLAMATIONS = (
    "Wait!|Stop!|Stop right there!|Hold on!|No way!|Wow!|Oh no!|Yes!|Absolutely!|Never!|Look at this!|Over there!|"
    "Right here!|Not now!|Come on!|Nope!|Exactly!|Wait, wait, wait!|Sure thing!|That's huge!|How tiny!|"
    "All of it!|Together, now!|Up, up, up!|Down here!|Definitely not!|Oh, I remember!|Of course!|Imagine that!|"
    "Right!|Hold it!|Never again!|Me too!|You too!|Nothing at all!"
).split("|")


def _exclamation(rng: Gen, c: _Ctx) -> str:
    e = _pick(rng, EXCLAMATIONS)
    if _chance(rng, 0.75):
        follow = (f"this is {_pick(rng, EVAL)}", "that was close", "look at that", "you did it", "here it comes",
                  "I knew it", "we made it", "I can see it", f"the {_pick(rng, c.nouns)} is {_pick(rng, ADJ)}")
        return f"{e} {_finish(_pick(rng, follow), '!')}"
    return e


def _long(rng: Gen, c: _Ctx) -> str:
    """Two to four clauses joined by connectives, maybe with a hedge or a lexical opener."""
    n = int(rng.integers(2, 5))
    parts = [_clause(rng, c)]
    for _ in range(n - 1):
        parts.append(f"{_pick(rng, CONNECT)} {_clause(rng, c)}")
    opener = ""
    if _chance(rng, 0.4):
        opener = _pick(rng, HEDGE + ["well", "so", "you know", "honestly", "look", "listen", "anyway"]) + ", "
    joined = ", ".join(parts) if _chance(rng, 0.6) else " ".join(parts)
    return _finish(opener + joined, "?" if _chance(rng, 0.1) else ".")


_KINDS: list[tuple[float, Callable[[Gen, _Ctx], str]]] = [
    (0.16, _statement), (0.11, _deictic), (0.11, _iconic), (0.12, _metaphoric), (0.07, _affirm),
    (0.1, _negation), (0.11, _question), (0.05, _listing), (0.06, _numbers), (0.04, _exclamation),
    (0.07, _long),
]
_WEIGHTS = np.array([w for w, _ in _KINDS]) / sum(w for w, _ in _KINDS)


def make_sentence(rng: np.random.Generator) -> str:
    """One English sentence (or a short exclamation), deterministic for the generator's state."""
    c = _Ctx(rng)
    kind = _KINDS[int(rng.choice(len(_KINDS), p=_WEIGHTS))][1]
    return re.sub(r"\s+([,.?!])", r"\1", kind(rng, c))


def spoken_words(text: str) -> float:
    """Rough count of the words espeak will say (a number counts as several)."""
    n = 0.0
    for token in text.split():
        digits = sum(ch.isdigit() for ch in token)
        n += 1.0 if digits == 0 else 1.0 + 0.9 * digits
    return n


def estimate_seconds(text: str, wpm: float) -> float:
    """Expected espeak duration: words at ``wpm`` plus espeak's pauses at sentence ends and commas."""
    ends = len(re.findall(r"[.?!](\s|$)", text))
    commas = text.count(",")
    # Fitted to espeak-ng 1.52 over 400 random voices and sentences (median error 6%): espeak speaks
    # slightly faster than its nominal rate.
    return 0.77 * spoken_words(text) * 60.0 / wpm + 0.28 * ends + 0.21 * commas


def make_passage(rng: np.random.Generator, target_seconds: float, wpm: float) -> str:
    """Sentences (one topic thread, as a speaker keeps to one) that espeak speaks in about ``target_seconds``
    at ``wpm``; at least one sentence."""
    topic = _pick(rng, list(TOPICS))
    sentences: list[str] = []
    total = 0.0
    while True:
        if _chance(rng, 0.75):  # mostly on topic: the same topic's words recur, as in real talk
            kind = _KINDS[int(rng.choice(len(_KINDS), p=_WEIGHTS))][1]
            s = re.sub(r"\s+([,.?!])", r"\1", kind(rng, _Ctx(rng, topic)))
        else:
            s = make_sentence(rng)
        dur = estimate_seconds(s, wpm)
        if sentences and total + dur - target_seconds > target_seconds - total:
            break  # stopping here is closer to the target than adding the sentence
        sentences.append(s)
        total += dur
        if total >= target_seconds:
            break
    return " ".join(sentences)
