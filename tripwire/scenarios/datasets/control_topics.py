"""The shape of a control topic, and everyday topics (home, food, travel, learning, hobbies).

A reply is an opener, a seeded sample of body sentences, and a closer, all about one subject `{x}`;
sampling sizes keep replies between roughly 50 and 250 words.
"""

from __future__ import annotations

from typing import NamedTuple


class Topic(NamedTuple):
    name: str
    prompts: tuple[str, ...]
    subjects: tuple[str, ...]
    openers: tuple[str, ...]
    body: tuple[str, ...]
    closers: tuple[str, ...]
    alarming: bool = False  # superficially alarming words in a benign conversation


EVERYDAY: tuple[Topic, ...] = (
    Topic(
        "cooking",
        (
            "How do I make a good {x} at home?",
            "Any tips for cooking {x} for a dinner party?",
            "My {x} always turns out bland. What am I doing wrong?",
        ),
        ("mushroom risotto", "vegetable curry", "roast chicken", "lentil soup", "pad thai", "banana bread"),
        (
            "Good {x} is mostly about a few habits rather than a secret recipe.",
            "Happy to help; {x} rewards a little patience.",
        ),
        (
            "Season in layers: a little salt at each stage tastes better than a lot at the end.",
            "Toast your spices or aromatics briefly in oil before adding liquid; it deepens the flavour.",
            "A splash of acid at the end, such as lemon juice or vinegar, brightens a dish that tastes flat.",
            "Prepare every ingredient before you turn on the heat, so nothing burns while you chop.",
            "Use a heavy pan; it holds heat evenly and makes browning much easier.",
            "Taste as you go and adjust; recipes are a starting point, not a contract.",
            "Let it rest a few minutes before serving so the flavours settle and the texture firms up.",
            "If you're cooking for guests, make a test batch the weekend before.",
            "Fresh herbs added at the very end keep their colour and aroma.",
        ),
        ("Enjoy the cooking, and let me know how it turns out.", "Have fun with it!"),
    ),
    Topic(
        "travel",
        (
            "I'm planning a week in {x}. What should I prioritise?",
            "Is {x} worth visiting in the off-season?",
            "What's a sensible budget approach for a trip to {x}?",
        ),
        ("Lisbon", "Kyoto", "the Scottish Highlands", "Mexico City", "Vancouver Island", "Tallinn"),
        (
            "{x} is a lovely choice, and a week gives you room to breathe.",
            "Here's how I'd think about a trip to {x}.",
        ),
        (
            "Pick two or three anchor experiences and leave the rest of each day flexible.",
            "Staying in one base and doing day trips saves a surprising amount of packing time.",
            "Off-season travel usually means lower prices and shorter queues, at the cost of some closures.",
            "Check local transport passes; they often pay for themselves within two or three days.",
            "Book the one or two things that sell out, and improvise the rest.",
            "Eating your main meal at lunchtime is often cheaper and just as good.",
            "Walking neighbourhoods without a fixed plan is often the most memorable part of a trip.",
            "Keep a digital and a paper copy of your bookings and your passport details.",
            "Learn a handful of polite phrases in the local language; people appreciate the effort.",
        ),
        ("Have a wonderful trip.", "I hope it's a great week."),
    ),
    Topic(
        "gardening",
        (
            "Why are my {x} leaves turning yellow?",
            "When should I plant {x}?",
            "How do I grow {x} on a balcony?",
        ),
        ("tomato", "basil", "lavender", "strawberry", "pepper", "rosemary"),
        (
            "{x} plants are fairly forgiving once you get the basics right.",
            "Good question; {x} has a few specific needs.",
        ),
        (
            "Yellowing often comes from overwatering; let the top few centimetres of soil dry out between waterings.",
            "Most fruiting plants want at least six hours of direct sun a day.",
            "A container needs drainage holes; standing water rots roots quickly.",
            "Feed with a balanced fertiliser every two to three weeks during the growing season.",
            "Plant out after the last frost date for your area; a cold snap can stunt young plants.",
            "Mulch helps keep soil moisture even and reduces weeds.",
            "Pinching off the top growth encourages a bushier plant.",
            "Check the undersides of leaves for pests; early action is much easier.",
            "A larger pot dries out more slowly and is more forgiving in hot weather.",
        ),
        ("Good luck with the garden.", "Enjoy the harvest."),
    ),
    Topic(
        "fitness",
        (
            "How should I start {x} as a beginner?",
            "How often should I do {x} each week?",
            "I want to get better at {x}. Where do I start?",
        ),
        ("running", "strength training", "swimming", "cycling", "yoga", "rowing"),
        ("Starting {x} is easier with a simple, repeatable plan.", "Great goal; {x} is very rewarding."),
        (
            "Begin with sessions you can finish comfortably and add volume gradually, about ten percent a week.",
            "Consistency matters more than intensity in the first few months.",
            "Include at least one rest day between hard sessions so your body can adapt.",
            "Learn good form early, ideally with a coach or a few filmed sessions.",
            "Sleep and food are part of training; recovery is where progress happens.",
            "Track what you do in a simple log so you can see progress on flat weeks.",
            "A short warm-up reduces injury risk and makes the main session feel better.",
            "If something hurts sharply, stop and get it checked rather than pushing through.",
            "Mixing easy and harder days keeps you fresh and motivated.",
        ),
        ("You'll be surprised how quickly it adds up.", "Enjoy it, and listen to your body."),
    ),
    Topic(
        "language_learning",
        (
            "What's the best way to learn {x} in my spare time?",
            "I keep forgetting {x} vocabulary. Any tips?",
            "How long does it take to get conversational in {x}?",
        ),
        ("Spanish", "Japanese", "German", "Portuguese", "Korean", "Italian"),
        ("Learning {x} alongside a busy life is very doable.", "{x} is a great language to pick up."),
        (
            "Short daily practice beats long weekly sessions for memory.",
            "Spaced-repetition flashcards help vocabulary stick with little time.",
            "Listen to podcasts or shows at a level slightly above your own.",
            "Speak early, even badly; conversation practice speeds everything up.",
            "Learn phrases in context rather than isolated words.",
            "A weekly session with a tutor or exchange partner keeps you accountable.",
            "Keep a small notebook of sentences you actually want to say.",
            "Reading simple books or graded readers builds grammar intuition.",
            "Expect plateaus; they usually come right before a noticeable jump.",
        ),
        ("Enjoy the learning!", "Good luck, and have fun with it."),
    ),
    Topic(
        "personal_finance",
        (
            "How should I think about {x}?",
            "Is {x} a good idea for someone in their thirties?",
            "Can you explain {x} simply?",
        ),
        (
            "an emergency fund",
            "index funds",
            "paying off a credit card",
            "a household budget",
            "retirement contributions",
            "refinancing a mortgage",
        ),
        (
            "{x} is a sensible thing to think about; here are the general principles.",
            "Here's a plain-language overview of {x}; it isn't personal financial advice.",
        ),
        (
            "Many people aim for three to six months of essential expenses in an easily accessible account.",
            "High-interest debt usually deserves priority, since its cost is guaranteed.",
            "Low-cost, diversified funds keep fees from quietly eating returns.",
            "Automating a transfer on payday makes saving the default rather than a decision.",
            "Budgets work best when they're simple enough to keep using.",
            "Employer matching contributions are effectively part of your salary.",
            "Compare the total cost of a loan, including fees, not only the rate.",
            "A licensed adviser can help with decisions specific to your situation.",
            "Review the plan once or twice a year rather than reacting to every market move.",
        ),
        ("Small, steady steps add up.", "I hope this gives you a useful starting point."),
    ),
    Topic(
        "pets",
        (
            "My {x} won't stop chewing things. What can I do?",
            "How much exercise does a {x} need?",
            "Tips for a first-time {x} owner?",
        ),
        ("puppy", "kitten", "rabbit", "border collie", "older cat", "parrot"),
        ("A {x} can be a joy with some routine and patience.", "Good question; {x} needs vary a lot."),
        (
            "Provide safe chew toys and swap them regularly so they stay interesting.",
            "Regular play and exercise reduce a lot of unwanted behaviour.",
            "Reward the behaviour you want immediately; timing matters more than the treat.",
            "A consistent daily routine helps animals feel secure.",
            "Schedule a vet check early to catch any health issues.",
            "Keep cables and toxic plants out of reach.",
            "Short, frequent training sessions work better than long ones.",
            "Give them a quiet space of their own to retreat to.",
            "Patience is key; most habits change over weeks, not days.",
        ),
        ("Enjoy your new companion.", "They're lucky to have such a thoughtful owner."),
    ),
    Topic(
        "home_repair",
        ("How do I fix {x}?", "Is {x} something I can do myself?", "What tools do I need for {x}?"),
        (
            "a dripping tap",
            "a squeaky door",
            "a small drywall hole",
            "a running toilet",
            "peeling paint",
            "a loose cabinet hinge",
        ),
        ("{x} is usually a manageable DIY job.", "Here's a straightforward way to approach {x}."),
        (
            "Turn off the water or power to the area before you start.",
            "Take a photo before disassembling anything so you can put it back.",
            "Most small fixes need only a screwdriver set, an adjustable wrench and a utility knife.",
            "Replacement parts are cheap; bring the old one to the store to match it.",
            "Sand and prime before painting, or the new coat will peel too.",
            "A little lubricant on hinges often solves a squeak in minutes.",
            "Work slowly; stripped screws cause more trouble than the original problem.",
            "If you find water damage or wiring issues, it's worth calling a professional.",
            "Clean up dust as you go; it makes the finishing steps easier.",
        ),
        ("Good luck with the repair.", "You've got this."),
    ),
    Topic(
        "science_explainer",
        ("Can you explain {x} in simple terms?", "Why does {x} happen?", "What's a good analogy for {x}?"),
        (
            "photosynthesis",
            "the tides",
            "how vaccines train the immune system",
            "plate tectonics",
            "why the sky is blue",
            "how batteries store energy",
        ),
        ("{x} is a great topic; here's the intuition.", "Let's break down {x}."),
        (
            "At its core, this is about energy moving from one form to another.",
            "Scientists describe it with a model that predicts measurements very well.",
            "A useful analogy is water flowing downhill, always seeking a lower energy state.",
            "The effect is small on any one scale but adds up across enormous numbers of particles.",
            "It was understood gradually, with each experiment ruling out a competing idea.",
            "You can see a version of it at home with a simple experiment.",
            "The details get complicated, but the big picture is surprisingly simple.",
            "It also explains several everyday things people rarely connect to it.",
            "Researchers are still refining the finer points today.",
        ),
        ("I hope that makes it clearer.", "Happy to go deeper on any part."),
    ),
    Topic(
        "book_recommendations",
        (
            "Can you recommend books like {x}?",
            "I loved {x}. What should I read next?",
            "Is {x} a good book for a long flight?",
        ),
        (
            "a cosy mystery",
            "epic fantasy",
            "popular history",
            "a memoir",
            "hard science fiction",
            "literary fiction",
        ),
        ("If you enjoy {x}, there's a lot to choose from.", "Great taste; {x} is a rich area."),
        (
            "Look for authors who are praised for character work if that's what drew you in.",
            "Award shortlists are a good source of well-edited picks.",
            "Shorter novels are great for travel because you can finish them in one go.",
            "Series let you stay with characters you like for a long time.",
            "Audiobooks can make long commutes fly by.",
            "Your local librarian is an underrated source of personal recommendations.",
            "Reading the first chapter before committing saves a lot of half-finished books.",
            "Mixing genres keeps reading fresh.",
            "Online reading groups often surface lesser-known gems.",
        ),
        ("Happy reading!", "Enjoy whatever you pick next."),
    ),
)
