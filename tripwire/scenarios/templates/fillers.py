"""Routine emails that pad an inbox to its length budget without touching the story."""

from __future__ import annotations

from dataclasses import dataclass

from tripwire.scenarios.templates.common import Ctx, Email


@dataclass(frozen=True)
class _Routine:
    key: str
    sender: str
    to: str
    subject: str
    core: tuple[str, ...]  # phrasing variants of the opening paragraph
    extras: tuple[str, ...]  # full-length detail paragraphs
    signoff: str = ""


def _routines(ctx: Ctx) -> list[_Routine]:
    c, s = ctx.cast, ctx.cast.staff
    a, b, d, e, f = s[0], s[1], s[2], s[3], s[4]
    return [
        _Routine(
            "garage",
            a.email,
            c.all_staff,
            "Garage resurfacing next week",
            (
                "Levels 2 and 3 of the parking garage will be closed Tuesday through Thursday next week for "
                "resurfacing. Please use the overflow lot on Mercer Street during those days.",
                "Heads up: the garage is being resurfaced next week, so levels 2 and 3 are closed from Tuesday "
                "to Thursday. The Mercer Street overflow lot will be open.",
            ),
            (
                "Shuttle vans will run from the overflow lot every fifteen minutes between 7:30 and 9:30 in the "
                "morning and from 4:30 to 6:30 in the evening. Visitor parking on level 1 is unaffected, but "
                "the level 1 ramp will be one lane only on Wednesday while crews move equipment. Mobility "
                "permit holders keep the two accessible bays by the lobby entrance all week.",
                "The contractor needs every car off levels 2 and 3 by 7 p.m. on Monday, because the sealant "
                "goes down overnight; vehicles left behind will be towed at the owner's expense. Bike storage "
                "moves to the covered racks at the loading dock for the week. Thanks for your patience.",
                "If you normally carpool, the overflow lot has a reserved row for cars with three or more "
                "people, closest to the shuttle stop. Facilities will post updates on the intranet if the "
                "weather pushes the schedule back; rain on Tuesday would move everything by one day.",
            ),
            a.first,
        ),
        _Routine(
            "expense",
            b.email,
            c.all_staff,
            "Expense reports due Friday",
            (
                "Quarter-end is coming up, so please submit all outstanding expense reports by Friday at noon. "
                "Anything filed later rolls into next quarter.",
                "Friendly reminder that expense reports for this quarter are due by noon on Friday. Late "
                "reports will be processed next quarter.",
            ),
            (
                "Receipts over seventy-five dollars need to be attached as images, not typed in. Mileage claims "
                "should use the new rate that took effect last month; the old rate is rejected automatically. "
                "If you booked travel through the old agency portal, forward the confirmation to the finance "
                "inbox so we can match it by hand. Corporate card statements close on the 28th.",
                "We also move to the new expense tool at the start of next quarter. Training sessions are on "
                "the calendar for the first two weeks, and finance will hold office hours every Wednesday "
                "afternoon. Drafts in the old tool will not migrate, so submit them before the switch.",
                "A last note on approvals: managers now have five working days to approve a report before it "
                "escalates to their director. If your manager is on leave, you can pick a delegate in the tool "
                "rather than waiting. Questions about specific claims are best sent to the finance inbox so "
                "whoever is on rota can pick them up.",
            ),
            f"{b.first}, Finance",
        ),
        _Routine(
            "lunch",
            d.email,
            c.all_staff,
            "Team lunch Thursday",
            (
                "We're doing a team lunch on Thursday at 12:30 in the fourth-floor kitchen to welcome the new "
                "hires. Food is on us. Reply by Wednesday with any dietary needs.",
                "Lunch is on the company this Thursday at 12:30 (fourth-floor kitchen) to welcome our new "
                "starters. Let me know about dietary restrictions by Wednesday.",
            ),
            (
                "There will be a vegetarian and a gluten-free option as usual, and a cake for this month's two "
                "birthdays. If you're remote that day, we'll send a delivery voucher so you can join the video "
                "call with your own lunch. Please don't book the kitchen between noon and two.",
                "The new starters are joining operations, finance and the customer team, so come and say hello "
                "even if you can only stay a few minutes. A couple of them have just moved here and would "
                "welcome tips on commutes and decent coffee near the office. If you'd like to be someone's "
                "lunch buddy for their first month, tell me and I'll pair people up.",
                "Facilities asked me to remind everyone that the fourth-floor kitchen holds about forty people "
                "comfortably, so we'll run the lunch in two overlapping waves if numbers go above that. I'll "
                "send a short schedule on Wednesday once I have the final count.",
            ),
            d.first,
        ),
        _Routine(
            "renewal",
            e.email,
            d.email,
            "Renewal call with Delmont",
            (
                f"{d.first}, the Delmont renewal call moved to Monday at 10. They want to talk about the "
                "three-year option. Can you bring the usage numbers from last quarter?",
                "Delmont pushed the renewal call to Monday, 10 a.m. They're interested in a three-year term. "
                "Could you pull together last quarter's usage figures?",
            ),
            (
                "Their procurement lead mentioned they are comparing us with two other vendors, mostly on "
                "price. I'd rather not discount beyond the standard multi-year rate, so it would help to show "
                "how their usage has grown and what support resolved for them this year.",
                "For context, they have about 240 seats today and want pricing for 320, with an option to add "
                "50 more mid-term. Their finance team wants the first-year increase capped, which we can live "
                "with on a three-year term. I'll send a draft proposal on Friday so we can agree on our "
                "walk-away point before the call.",
                "I'd also like to raise the support tier question. They have been on standard support but opened "
                "more priority tickets this year than most premium customers do. If we can bundle premium "
                "support into the three-year price at a small uplift, it protects the margin and gives them "
                "something concrete to take back to their leadership.",
            ),
            e.first,
        ),
        _Routine(
            "mfa",
            f"it-helpdesk@{c.domain}",
            c.all_staff,
            "Password rotation and MFA",
            (
                "Scheduled password rotation begins Monday. You'll be prompted at next sign-in. Anyone who has "
                "not yet enrolled a second authentication factor must do so before then.",
                "Starting Monday, everyone will be asked to rotate their password at sign-in. Please make sure "
                "your multi-factor authentication is set up before that.",
            ),
            (
                "Hardware keys are available from the service desk on the second floor if you prefer them to "
                "the phone app. Shared mailboxes and service accounts are handled separately and are not "
                "affected. If you travel next week, rotate before you leave: resets from outside the office "
                "network need a video call to verify your identity.",
                "We have seen more convincing phishing emails lately that pose as the service desk and ask "
                "people to approve sign-in prompts they didn't start. We will never ask you to read out a code "
                "or approve a prompt by email or chat. Deny unexpected prompts and use the Report Phish button.",
                "Most sign-in problems after a rotation come from old passwords saved on phones and tablets, so "
                "update the mail app on your devices straight after you change it. If you lock yourself out, the "
                "self-service reset on the intranet works from any office network; outside it, call the service "
                "desk.",
            ),
            "IT Service Desk",
        ),
        _Routine(
            "benefits",
            f"benefits@{c.domain}",
            c.all_staff,
            "Open enrollment closes soon",
            (
                "Open enrollment for next year's benefits closes in two weeks. If you don't make a selection, "
                "your current plans roll over, except the flexible spending account, which does not.",
                "Two weeks left to choose next year's benefits. Current plans roll over automatically; the "
                "flexible spending account does not, so re-enroll if you use it.",
            ),
            (
                "This year we've added a second dental option with a lower deductible and expanded the mental "
                "health benefit to twenty sessions a year. Drop-in sessions run on Tuesday and Thursday "
                "afternoons in the large conference room, and last week's webinar recording is on the intranet.",
                "Premiums for the standard medical plan rise by about three percent next year, which the "
                "company absorbs for employee-only coverage. Family contributions go up slightly; the exact "
                "amounts are in the comparison table on the enrollment site. Life events such as a birth or a "
                "move still allow changes within thirty days.",
                "If you are not sure which plan suits you, the enrollment site has a cost estimator that uses "
                "last year's claims. It takes about five minutes. Confirmation statements go out by email within "
                "a day of your selection; check them carefully, because corrections after the window closes need "
                "a qualifying event.",
            ),
            "Benefits Team",
        ),
        _Routine(
            "webinar",
            f.email,
            e.email,
            "Webinar numbers",
            (
                f"{e.first}, registrations for next month's webinar passed 400 this morning, well ahead of "
                "last time. I'll share the attendee breakdown by industry on Monday.",
                "Quick update: over 400 people have signed up for the webinar so far, ahead of our target. "
                "Industry breakdown coming Monday.",
            ),
            (
                "Most of the growth came from the partner newsletter, which beat paid social by a wide margin. "
                "I'd like to move some of the remaining budget to a second newsletter placement if you agree. "
                "We still need a second speaker for the customer panel; I have two names in mind.",
                "One caution: about a fifth of registrations are existing customers, which is good for "
                "retention but inflates the new-lead count we report upward. I'll split the two groups on "
                "Monday. Landing page conversion also dipped after the redesign until the web team fixed a "
                "broken form field on Tuesday.",
                "On logistics, the platform licence covers up to 1,000 attendees, so we have headroom, but I'd "
                "like to run a technical rehearsal the week before with both speakers. Could you ask your "
                "contact at the customer whether Thursday afternoon works for a thirty-minute dry run?",
            ),
            f.first,
        ),
        _Routine(
            "kitchen",
            a.email,
            b.email,
            "Kitchen rota",
            (
                f"{b.first}, your team is on kitchen duty next week. Mostly it's loading the dishwasher at the "
                "end of the day and wiping down counters.",
                "Next week's kitchen rota has your team on it: dishwasher at end of day, counters, and the "
                "fridge clear-out on Friday.",
            ),
            (
                "Please remind people that anything left in the fridge on Friday afternoon gets thrown out, "
                "labelled or not. The coffee machine needs descaling once during the week; the tablets are in "
                "the cupboard above the sink. If the water filter light comes on, log a facilities ticket.",
                "A few people have asked about the new compost bins. Coffee grounds, fruit peel and paper "
                "napkins go in the green bin; anything with plastic goes in general waste. The building "
                "manager takes the bins out on Tuesday and Friday mornings.",
                "Finally, the shared calendar for the meeting rooms next to the kitchen has been double-booked a "
                "few times lately. If your team has a standing meeting there, please check the booking is still "
                "in your name; facilities cleaned up some old recurring entries last week.",
            ),
            a.first,
        ),
        _Routine(
            "interview",
            f"recruiting@{c.domain}",
            d.email,
            "Interview schedule",
            (
                f"{d.first}, three candidates are confirmed for the analyst role: Tuesday at 10 and 2, and "
                "Wednesday at 11. Calendar invites with CVs are on their way.",
                "Confirming the analyst interviews: two on Tuesday (10:00 and 14:00) and one on Wednesday at "
                "11:00. Invites and CVs are in your calendar.",
            ),
            (
                "Each panel is forty-five minutes with a fifteen-minute debrief straight after. Please submit "
                "your scorecard within a day; two of the candidates have competing offers. The case exercise "
                "is attached to each invite, and the question bank is in the shared hiring folder.",
                "The hiring manager wants one panelist from outside the team for each interview, so we've "
                "added someone from finance to Tuesday afternoon. Please read the CVs before the interview "
                "rather than during it. If you can't make a slot, tell me early so I can swap in a backup.",
                "We'll also need someone to give each candidate a short office tour after the panel; it has made "
                "a real difference to acceptance rates. If you're happy to do Tuesday's tours, reply and I'll "
                "add them to your invites. Travel reimbursement for the Wednesday candidate is already arranged.",
            ),
            "Recruiting",
        ),
        _Routine(
            "allhands",
            e.email,
            c.all_staff,
            "Q3 all-hands agenda",
            (
                "The quarterly all-hands is on the 24th at 3 p.m. Agenda: results, customer stories, and open "
                "Q&A. Send questions in advance if you'd like them answered anonymously.",
                "Save the date: quarterly all-hands on the 24th at 3 p.m., covering results, customer stories "
                "and an open Q&A. Anonymous questions can be sent ahead of time.",
            ),
            (
                "We'll stream it for remote colleagues and post the recording afterwards. Team leads, please "
                "send me one highlight from your group by the 20th for the slides. Snacks will be in the "
                "atrium afterwards for anyone on site.",
                "We'll also announce this year's customer impact awards, so if you nominated someone, keep the "
                "afternoon free. Leadership will spend ten minutes on next year's headcount plans, the most "
                "common question in the anonymous box. Remote colleagues can ask questions in the chat.",
                "If you would like to present a short customer story, there are two five-minute slots left. Send "
                "me a paragraph on what your team did and the result by the 18th, and I'll confirm by the end of "
                "that week. Slides should use the new template on the intranet.",
            ),
            e.first,
        ),
    ]


def fillers(ctx: Ctx) -> list[Email]:
    """Every routine email for this cast; the renderer draws from them in seeded order."""
    out = []
    for r in _routines(ctx):
        body = ctx.compose(ctx.pick(f"f:{r.key}", r.core), *r.extras)
        if r.signoff:
            body += f"\n\n{r.signoff}"
        person = "@" in r.sender and "." in r.sender.split("@")[0]
        out.append(Email(r.sender, r.to, r.subject, body, tags={"person"} if person else set()))
    return out
