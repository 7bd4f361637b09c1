package web

import (
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	msgcatalog "golang.org/x/text/message/catalog"
)

// The keys of the message catalog are the English texts themselves: a
// template then reads as English, and a string nobody translated yet still
// shows up in English rather than as an opaque key. TestFrenchComplete makes
// sure no template string is left without a French translation.

// supported lists the portal's languages; the index of a tag here is its
// index into translator.printers and the template variants.
var supported = []language.Tag{language.English, language.French}

// french holds every French text of the portal, keyed by its English text.
var french = map[string]string{
	"Outpost library":      "Bibliothèque Outpost",
	"Search":               "Rechercher",
	"Search courses":       "Rechercher des cours",
	"Search results":       "Résultats de recherche",
	"Courses":              "Cours",
	"Course":               "Cours",
	"Home":                 "Accueil",
	"Language":             "Langue",
	"Subject":              "Matière",
	"Subjects":             "Matières",
	"Grades":               "Niveaux",
	"Size":                 "Taille",
	"Pages":                "Pages",
	"All languages":        "Toutes les langues",
	"All subjects":         "Toutes les matières",
	"Other subjects":       "Autres matières",
	"Filter courses":       "Filtrer les cours",
	"Portal language":      "Langue du portail",
	"Next page":            "Page suivante",
	"Previous page":        "Page précédente",
	"Previous":             "Précédent",
	"Next":                 "Suivant",
	"Lessons":              "Leçons",
	"Download (%s)":        "Télécharger (%s)",
	"Open full screen":     "Ouvrir en plein écran",
	"Transcript":           "Transcription",
	"Video":                "Vidéo",
	"Audio":                "Audio",
	"PDF":                  "PDF",
	"E-book":               "Livre numérique",
	"Activity":             "Activité",
	"Document":             "Document",
	"File":                 "Fichier",
	"Item navigation":      "Navigation entre les éléments",
	"Back to the course":   "Retour au cours",
	"Go to the home page":  "Aller à la page d'accueil",
	"Page not found":       "Page introuvable",
	"Something went wrong": "Un problème est survenu",
	"%d B":                 "%d o",
	"%.1f kB":              "%.1f ko",
	"%.1f MB":              "%.1f Mo",
	"%.1f GB":              "%.1f Go",
	"Your browser cannot play this video. Download it and open it with a video player.":                                        "Votre navigateur ne peut pas lire cette vidéo. Téléchargez-la et ouvrez-la avec un lecteur vidéo.",
	"Your browser cannot play this recording. Download it and open it with an audio player.":                                   "Votre navigateur ne peut pas lire cet enregistrement. Téléchargez-le et ouvrez-le avec un lecteur audio.",
	"This browser cannot show PDF files inside the page. Download the file to read it.":                                        "Ce navigateur ne peut pas afficher les PDF dans la page. Téléchargez le fichier pour le lire.",
	"This file cannot be shown in the page. Download it to open it.":                                                           "Ce fichier ne peut pas être affiché dans la page. Téléchargez-le pour l'ouvrir.",
	"Open this e-book with an e-book reader app after downloading it.":                                                         "Ouvrez ce livre numérique avec une application de lecture après l'avoir téléchargé.",
	"This document is long; only its beginning is shown. Download it to read the rest.":                                        "Ce document est long ; seul le début est affiché. Téléchargez-le pour lire la suite.",
	"This activity needs JavaScript. If nothing appears, turn JavaScript on in your browser.":                                  "Cette activité a besoin de JavaScript. Si rien n'apparaît, activez JavaScript dans votre navigateur.",
	"No courses on this box yet. Ask the person who looks after it to import some.":                                            "Aucun cours sur ce boîtier pour l'instant. Demandez à la personne qui s'en occupe d'en importer.",
	"No course matches these filters.":                                                                                         "Aucun cours ne correspond à ces filtres.",
	"Show all courses":                                                                                                         "Afficher tous les cours",
	"Type a few words to search the titles and texts of all courses.":                                                          "Tapez quelques mots pour chercher dans les titres et les textes de tous les cours.",
	"Nothing found for “%s”. Try fewer or shorter words, or another spelling.":                                                 "Aucun résultat pour « %s ». Essayez moins de mots, des mots plus courts ou une autre orthographe.",
	"There is no page at this address. It may have been removed, or the link may be wrong.":                                    "Il n'y a aucune page à cette adresse. Elle a peut-être été supprimée, ou le lien est erroné.",
	"This course is not on this box. It may have been removed; look for it from the home page or search.":                      "Ce cours n'est pas sur ce boîtier. Il a peut-être été supprimé ; cherchez-le depuis la page d'accueil ou la recherche.",
	"This item is not in the course. The course may have been updated; open the course to see what it has.":                    "Cet élément n'est pas dans le cours. Le cours a peut-être été mis à jour ; ouvrez le cours pour voir son contenu.",
	"This file is missing from the box. Ask the person who looks after it to import the course again.":                         "Ce fichier manque sur le boîtier. Demandez à la personne qui s'en occupe de réimporter le cours.",
	"The box could not show this page. Try again in a minute; if it keeps happening, tell the person who looks after the box.": "Le boîtier n'a pas pu afficher cette page. Réessayez dans une minute ; si le problème continue, prévenez la personne qui s'occupe du boîtier.",
	"Search for a course:": "Rechercher un cours :",
}

// plurals are the messages whose wording depends on a count: English and
// French forms of "one" and "other" (French counts 0 as singular, which
// CLDR's plural rules, not our code, take care of).
var plurals = []struct {
	key    string
	en, fr [2]string
}{
	{"%d items", [2]string{"%d item", "%d items"}, [2]string{"%d élément", "%d éléments"}},
	{"%d results", [2]string{"%d result", "%d results"}, [2]string{"%d résultat", "%d résultats"}},
	{"%d courses", [2]string{"%d course", "%d courses"}, [2]string{"%d cours", "%d cours"}},
}

// autonyms name the languages of courses in their own language, so a learner
// finds theirs whatever the portal's language. Unlisted languages show
// their code. A short table rather than x/text/language/display, whose
// tables would add megabytes to a binary meant for small boxes.
var autonyms = map[string]string{
	"ar": "العربية", "bn": "বাংলা", "de": "Deutsch", "en": "English",
	"es": "Español", "fa": "فارسی", "fr": "Français", "ha": "Hausa",
	"hi": "हिन्दी", "id": "Bahasa Indonesia", "it": "Italiano", "am": "አማርኛ",
	"ln": "Lingála", "mg": "Malagasy", "nl": "Nederlands", "pt": "Português",
	"ru": "Русский", "rw": "Kinyarwanda", "so": "Soomaali", "sw": "Kiswahili",
	"tr": "Türkçe", "uk": "Українська", "ur": "اردو", "wo": "Wolof",
	"yo": "Yorùbá", "zh": "中文", "zu": "isiZulu", "ff": "Fulfulde",
}

func languageName(code string) string {
	if n, ok := autonyms[code]; ok {
		return n
	}
	if t, err := language.Parse(code); err == nil {
		base, _ := t.Base()
		if n, ok := autonyms[base.String()]; ok {
			return n + " (" + code + ")"
		}
	}
	return code
}

// translator picks the portal language of a request and holds one printer
// per supported language; message.Printer is safe for concurrent use.
type translator struct {
	matcher  language.Matcher
	printers []*message.Printer
	def      int

	defaultFellBack bool

	// seen remembers what each Accept-Language header chose: parsing and
	// matching one is ~2 µs and 23 allocations, a tenth of a page the
	// portal already has, and the phones of a school send a handful of
	// distinct headers. Bounded in entries and in the length of a header
	// it keeps (a stranger's header may be as long as the server allows);
	// emptied when full.
	mu   sync.Mutex
	seen map[string]int
}

const (
	seenLanguagesMax = 256
	seenHeaderMax    = 256 // bytes; browsers send well under 100
)

func newTranslator(defaultLang string) (*translator, error) {
	b := msgcatalog.NewBuilder(msgcatalog.Fallback(language.English))
	for en, fr := range french {
		if err := b.SetString(language.French, en, fr); err != nil {
			return nil, fmt.Errorf("build French messages: %q: %w", en, err)
		}
	}
	for _, p := range plurals {
		if err := b.Set(language.English, p.key, plural.Selectf(1, "%d", "one", p.en[0], "other", p.en[1])); err != nil {
			return nil, fmt.Errorf("build English plurals: %q: %w", p.key, err)
		}
		if err := b.Set(language.French, p.key, plural.Selectf(1, "%d", "one", p.fr[0], "other", p.fr[1])); err != nil {
			return nil, fmt.Errorf("build French plurals: %q: %w", p.key, err)
		}
	}
	tr := &translator{matcher: language.NewMatcher(supported)}
	for _, tag := range supported {
		tr.printers = append(tr.printers, message.NewPrinter(tag, message.Catalog(b)))
	}
	if defaultLang == "" {
		defaultLang = "en"
	}
	tag, err := language.Parse(defaultLang)
	if err != nil {
		return nil, fmt.Errorf("default language %q: %w; use a tag such as \"en\" or \"fr\"", defaultLang, err)
	}
	_, idx, conf := tr.matcher.Match(tag)
	if conf == language.No {
		// A box set up for a language the portal does not speak yet still
		// works, in English; New logs that it fell back.
		idx = 0
		tr.defaultFellBack = true
	}
	tr.def = idx
	return tr, nil
}

// locale is the portal language chosen for one request.
type locale struct {
	idx      int
	explicit bool // chosen by ?hl=, so links must carry it on
}

func (tr *translator) printer(l locale) *message.Printer { return tr.printers[l.idx] }

// choose prefers ?hl= (a link a teacher can share, no cookie needed), then
// the browser's Accept-Language, then the box's default.
func (tr *translator) choose(r *http.Request) locale {
	if hl := r.URL.Query().Get("hl"); hl != "" {
		if t, err := language.Parse(hl); err == nil {
			if _, idx, conf := tr.matcher.Match(t); conf != language.No {
				return locale{idx: idx, explicit: true}
			}
		}
	}
	if al := r.Header.Get("Accept-Language"); al != "" {
		return locale{idx: tr.fromHeader(al)}
	}
	return locale{idx: tr.def}
}

// fromHeader is the portal language an Accept-Language header asks for, or
// the default.
func (tr *translator) fromHeader(al string) int {
	tr.mu.Lock()
	idx, ok := tr.seen[al]
	tr.mu.Unlock()
	if ok {
		return idx
	}
	idx = tr.def
	if tags, _, err := language.ParseAcceptLanguage(al); err == nil && len(tags) > 0 {
		if _, i, conf := tr.matcher.Match(tags...); conf != language.No {
			idx = i
		}
	}
	if len(al) > seenHeaderMax {
		return idx
	}
	tr.mu.Lock()
	if len(tr.seen) >= seenLanguagesMax || tr.seen == nil {
		tr.seen = map[string]int{}
	}
	tr.seen[al] = idx
	tr.mu.Unlock()
	return idx
}
