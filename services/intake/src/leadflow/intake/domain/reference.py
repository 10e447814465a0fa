"""Reference lists built in so intake works offline: free-mail and disposable domains, role
addresses, the values forms and CRM exports use for "nothing chosen", regions that are no
country.
"""

from __future__ import annotations

from collections.abc import Mapping

# ---------------------------------------------------------------------------------------
# Reference lists. Built in so intake works offline; big enough for the usual suspects.


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


FREE_MAIL_DOMAINS: frozenset[str] = _words(
    """
    gmail.com googlemail.com yahoo.com yahoo.co.in yahoo.co.uk yahoo.fr yahoo.de yahoo.es
    yahoo.it yahoo.com.au yahoo.com.br yahoo.co.jp yahoo.in ymail.com rocketmail.com
    hotmail.com hotmail.co.uk hotmail.fr hotmail.de hotmail.it hotmail.es outlook.com
    outlook.in outlook.fr outlook.de live.com live.co.uk live.in live.fr msn.com
    aol.com aim.com icloud.com me.com mac.com gmx.com gmx.de gmx.net gmx.at gmx.ch web.de
    t-online.de freenet.de mail.com email.com usa.com mail.ru inbox.ru list.ru bk.ru
    yandex.ru yandex.com ya.ru protonmail.com protonmail.ch proton.me pm.me tutanota.com
    tuta.io zoho.com zohomail.com qq.com 163.com 126.com yeah.net sina.com sohu.com
    rediffmail.com naver.com daum.net hanmail.net libero.it virgilio.it orange.fr
    wanadoo.fr laposte.net free.fr sfr.fr btinternet.com sky.com virginmedia.com
    ntlworld.com talktalk.net comcast.net verizon.net att.net sbcglobal.net bellsouth.net
    cox.net charter.net earthlink.net juno.com optonline.net shaw.ca rogers.com
    sympatico.ca bigpond.com optusnet.com.au hushmail.com fastmail.com fastmail.fm
    seznam.cz wp.pl o2.pl interia.pl onet.pl ukr.net abv.bg uol.com.br bol.com.br
    terra.com.br hey.com
    """
)

DISPOSABLE_DOMAINS: frozenset[str] = _words(
    """
    mailinator.com mailinator.net guerrillamail.com guerrillamail.net guerrillamail.org
    guerrillamailblock.com sharklasers.com grr.la 10minutemail.com 10minutemail.net
    20minutemail.com temp-mail.org tempmail.com tempmail.net tempmailo.com tempail.com
    throwawaymail.com yopmail.com yopmail.fr yopmail.net trashmail.com trashmail.de
    trashmail.net getnada.com nada.email dispostable.com maildrop.cc mailnesia.com
    fakeinbox.com mintemail.com spamgourmet.com mohmal.com emailondeck.com discard.email
    burnermail.io mytemp.email tempinbox.com mailcatch.com spambox.us getairmail.com
    moakt.com emailfake.com fakemail.net mail-temporaire.fr jetable.org spam4.me
    incognitomail.org mailpoof.com 33mail.com anonaddy.me temp-mail.io minuteinbox.com
    """
)

ROLE_LOCAL_PARTS: frozenset[str] = _words(
    """
    info sales admin administrator support contact hello office marketing webmaster
    postmaster hostmaster noreply no-reply donotreply billing accounts accounting hr
    jobs careers recruiting team help helpdesk enquiries enquiry inquiries inquiry abuse
    security press media mail newsletter service services feedback orders root it legal
    privacy compliance finance purchasing procurement reception events partners
    """
)

# Values that forms and CRM exports use to mean "nothing was chosen".
BLANK_TOKENS: frozenset[str] = frozenset(
    {"", "select", "-", "--", "n/a", "na", "none", "null", "unknown", "not provided", "nil"}
)

COUNTRY_ALIASES: Mapping[str, str] = {
    "uk": "GB",
    "u.k.": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "united kingdom": "GB",
    "usa": "US",
    "u.s.a.": "US",
    "us": "US",
    "u.s.": "US",
    "america": "US",
    "united states": "US",
    "united states of america": "US",
    "uae": "AE",
    "u.a.e.": "AE",
    "emirates": "AE",
    "south korea": "KR",
    "korea": "KR",
    "republic of korea": "KR",
    "north korea": "KP",
    "russia": "RU",
    "vietnam": "VN",
    "viet nam": "VN",
    "iran": "IR",
    "syria": "SY",
    "laos": "LA",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "taiwan": "TW",
    "czech republic": "CZ",
    "czechia": "CZ",
    "macedonia": "MK",
    "moldova": "MD",
    "ivory coast": "CI",
    "cote d'ivoire": "CI",
    "holland": "NL",
    "the netherlands": "NL",
    "hong kong": "HK",
    "macau": "MO",
    "macao": "MO",
    "palestine": "PS",
    "brunei": "BN",
    "cape verde": "CV",
    "swaziland": "SZ",
    "burma": "MM",
    "turkey": "TR",
    "turkiye": "TR",
    "deutschland": "DE",
    "espana": "ES",
    "españa": "ES",
    "schweiz": "CH",
    "suisse": "CH",
    "österreich": "AT",
    "osterreich": "AT",
    "nederland": "NL",
    "italia": "IT",
    "bharat": "IN",
    "vatican": "VA",
    "vatican city": "VA",
    "kosovo": "XK",
    "micronesia": "FM",
    "congo": "CG",
    "drc": "CD",
    "dr congo": "CD",
    "democratic republic of the congo": "CD",
    "east timor": "TL",
    "st lucia": "LC",
}
# Regions that are not a country: known, deliberately no country.
NON_COUNTRY_REGIONS: frozenset[str] = frozenset(
    {
        "asia/pacific region",
        "europe",
        "asia",
        "africa",
        "middle east",
        "apac",
        "emea",
        "latam",
        "other",
        "others",
        "international",
        "worldwide",
        "global",
    }
)


def is_blank(value: object) -> bool:
    """Empty, whitespace, or a form placeholder such as ``Select``."""
    if value is None:
        return True
    return str(value).strip().casefold() in BLANK_TOKENS


def clean_text(value: object, *, max_length: int = 500) -> str | None:
    """Trimmed text with inner whitespace runs collapsed; blanks become ``None``."""
    if is_blank(value):
        return None
    text = " ".join(str(value).split())
    return text[:max_length]
