"""What header words mean: field synonyms in several languages, qualifiers, and hint words.

Every phrase here is normalised by :func:`import_pipelines.mapping.normalize.header_words` before
use, so it is written the way people write headers (accents, capitals and punctuation are free)
and matched as a set of words: ``"phone mobile"`` and ``"Mobile Phone"`` are the same phrase.

Languages: English, German, French and Spanish throughout, Dutch, Italian and Portuguese for the
common fields. The tables cover the field names of the ``contacts`` template; a template with
other fields brings its synonyms on :class:`~import_pipelines.mapping.model.TargetField`.
"""

from __future__ import annotations

# field -> header phrases meaning it
SYNONYMS: dict[str, tuple[str, ...]] = {
    "first_name": (
        "first name", "firstname", "first", "fname", "given name", "given", "forename", "first names", "christian name",
        "vorname", "rufname", "prenom", "prenoms", "nombre de pila", "primer nombre", "voornaam", "roepnaam",
        "nome proprio", "primeiro nome",
    ),
    "last_name": (
        "last name", "lastname", "surname", "family name", "lname", "last", "family",
        "nachname", "familienname", "zuname", "nom de famille", "nom de naissance", "apellido", "apellidos",
        "primer apellido", "achternaam", "cognome", "sobrenome", "apelido",
    ),
    "full_name": (
        "name", "nom", "nombre", "nome", "full name", "fullname", "contact name", "display name", "person name", "customer name", "client name",
        "member name", "attendee name", "subscriber name", "contact person",         "vollstandiger name", "name vollstandig", "kontakt", "ansprechpartner", "kontaktperson", "kunde", "kundenname",
        "nom complet", "nom et prenom", "prenom et nom", "nom prenom", "nombre completo", "nombre y apellidos",
        "apellidos y nombre", "contacto", "volledige naam", "naam", "nome completo", "nome e cognome",
    ),
    "email": (
        "email", "email address", "mail", "mail address", "emailaddress", "email id", "e mail adresse", "email adresse",
        "mailadresse", "emailadresse", "courriel", "adresse email", "adresse electronique", "adresse mail", "mel",
        "correo", "correo electronico", "correo e", "email principal", "e posta", "posta elettronica", "indirizzo email",
        "e mailadres", "emailadres",
    ),
    "phone": (
        "phone", "phone number", "telephone", "telephone number", "tel", "tel number", "tel no", "phone no",         "office phone", "direct phone", "main phone", "telefon", "telefonnummer",
        "tel nr", "festnetz", "festnetznummer", "rufnummer", "telephone fixe", "tel fixe", "numero de telephone",
        "fixe", "telefono", "telefono fijo", "numero de telefono", "fijo", "telefoon", "telefoonnummer",
        "telefone", "numero di telefono",
    ),
    "mobile": (
        "mobile", "mobile phone", "mobile number", "mobile phone number", "cell", "cell phone", "cellphone",
        "cell number", "cellular", "mobil", "mobiltelefon", "mobilnummer", "mobilfunk", "handy", "handynummer",
        "portable", "telephone portable", "tel portable", "tel mobile", "gsm", "movil", "telefono movil", "celular",
        "numero de movil", "mobiel", "mobiele telefoon", "cellulare", "telemovel",
    ),
    "company": (
        "company", "company name", "organization", "organisation", "organization name", "organisation name", "org",
        "org name", "account", "account name", "business", "business name", "employer", "firm", "legal name",
        "firma", "firmenname", "unternehmen", "arbeitgeber", "societe", "entreprise", "raison sociale", "organisme",
        "empresa", "compania", "organizacion", "razon social", "bedrijf", "bedrijfsnaam", "azienda", "ragione sociale",
        "ditta",
    ),
    "job_title": (
        "job title", "title", "position", "role", "job", "jobtitle", "occupation", "function", "designation",
        "job position", "position title", "job role", "berufsbezeichnung", "beruf", "funktion", "stellung",
        "stelle", "titre", "fonction", "poste", "intitule du poste", "metier", "cargo", "puesto", "ocupacion",
        "profesion", "functie", "beroep", "ruolo", "mansione", "professione", "funcao",
    ),
    "address_line1": (
        "address", "address line 1", "address 1", "address1", "addr1", "addr", "street", "street address",
        "line 1", "street name",
        "street road name",         "strasse", "str", "anschrift", "adresse", "adresse 1",
        "adresse ligne 1", "rue", "voie", "direccion", "direccion 1", "direccion linea 1", "calle",
        "domicilio", "via", "indirizzo", "adres", "straat", "morada", "endereco",
    ),
    "address_line2": (
        "address line 2", "address 2", "address2", "addr2",         "line 2", "extended address", "apartment", "apt", "suite", "unit", "apartment suite",
        "building", "floor", "adresszusatz", "zusatz", "adresse 2", "adresse ligne 2", "complement d adresse",
        "complement adresse", "complement", "batiment", "direccion 2", "direccion linea 2", "complemento", "piso",
        "toevoeging", "adres 2",
    ),
    "city": (
        "city", "town", "locality", "city town", "town city", "suburb", "ort", "stadt", "ortschaft",
        "gemeinde", "ville", "commune", "localite", "ciudad", "localidad", "municipio", "poblacion", "plaats",
        "woonplaats", "citta", "comune", "localita", "cidade",
    ),
    "state": (
        "state", "province", "region", "state region", "state county", "province code", "state code",
        "county", "territory", "prefecture", "bundesland", "kanton", "land region", "departement", "comunidad autonoma",
        "provincia", "estado", "provincie", "regione", "distrito",
    ),
    "zip_code": (
        "zip", "zipcode", "postal code", "postcode", "post code", "postal", "plz",
        "postleitzahl", "code postal", "codigo postal", "postnummer", "cap", "codice postale",
            ),
    "country": (
        "country", "country name", "country code", "country region", "nation", "country iso", "iso country",
        "land", "staat", "pays", "code pays", "pais", "nacion", "paese", "nazione",
    ),
    "website": (
        "website", "web site", "web", "url", "homepage", "home page", "webpage", "web page", "site", "web address",
        "website url", "internet", "company website", "webseite", "internetseite", "internetadresse", "site web",
        "site internet", "pagina web", "sitio web", "web sitio", "sito web", "sito", "pagina",
    ),
    "notes": (
        "notes", "note", "comments", "comment", "remarks", "remark", "description", "memo", "background",
        "background info", "additional info", "additional information", "info", "details", "bemerkung",
        "bemerkungen", "notiz", "notizen", "kommentar", "kommentare", "anmerkung", "anmerkungen", "beschreibung",
        "hinweis", "hinweise", "remarque", "remarques", "commentaire", "commentaires", "observations", "observation",
        "nota", "notas", "observaciones", "comentario", "comentarios", "descripcion", "opmerking", "opmerkingen",
        "notities", "osservazioni", "note aggiuntive",
    ),
    "created_at": (
        "created", "created date", "create date", "date created", "creation date",         "created time", "creation time", "date added", "added", "added on", "date registered",
        "registered", "registration date", "signup date", "sign up date", "customer since", "since",
        "joined", "join date", "date joined", "record created", "erstellt", "erstellt am", "erstelldatum",
        "erstellungsdatum", "angelegt", "angelegt am", "anlagedatum", "hinzugefugt", "hinzugefugt am",
        "kunde seit", "date de creation", "cree le", "creation", "date d ajout",         "date d inscription", "inscrit le", "fecha de creacion", "fecha creacion",         "fecha de registro", "creado", "creado el", "aangemaakt", "aanmaakdatum", "data di creazione",
        "data criacao",
    ),
    "tags": (
        "tags", "tag", "labels", "label", "categories", "category", "groups", "segments",
        "segment", "keywords", "schlagworte", "schlagworter", "stichworte", "kategorie", "kategorien", "gruppe",
        "gruppen", "etiquettes", "etiquette", "mots cles", "categorie", "etiquetas", "etiqueta", "categorias",
        "categoria", "grupos", "grupo", "trefwoorden", "categorieen",
    ),
    "external_id": (
        "id", "record id", "external id", "unique id",         "source id", "legacy id", "kundennummer", "kundennr", "kunden nr", "kunden id", "numero client",
        "numero de client", "id client", "code client", "numero de cliente", "id cliente", "codigo cliente",
        "codigo de cliente", "klantnummer", "codice cliente",
    ),
}

# words that mark the record itself ("Person - Name", "Customer ID", "Lead Source"); cheap when extra,
# and "<word> id" / "<word> number" is the record's own id
ENTITY_WORDS = frozenset({
    "person", "people", "contact", "contacts", "customer", "customers", "cust", "client", "clients", "lead",
    "member", "attendee", "subscriber", "user", "record", "kunde", "kunden", "kontakt", "mitglied",
    "personne", "contacto", "cliente", "persona", "klant", "socio",
})

# words that name an address block ("Address 1 - City", "Default Address Zip")
GROUP_WORDS = frozenset({"address", "addr", "adresse", "anschrift", "direccion", "adres", "indirizzo", "endereco"})

# extra words that say nothing about the field
FILLERS = frozenset({
    "value", "the", "of", "a", "an", "de", "du", "des", "la", "le", "el", "del", "der", "die", "das", "von", "vom",
    "and", "und", "et", "y", "e", "i", "d", "l", "en", "van", "het", "da", "do", "di", "lfd", "field", "fld",
    "custom", "c", "st", "internet",
})

# words a field tolerates as extras ("phone number", "email address", "created date")
FIELD_FILLERS: dict[str, frozenset[str]] = {
    "phone": frozenset({"number", "no", "nr", "nummer", "numero", "num"}),
    "mobile": frozenset({"number", "no", "nr", "nummer", "numero", "num", "phone", "telephone", "telefon", "telefono"}),
    "email": frozenset({"address", "adresse", "direccion", "adres", "1"}),
    "company": frozenset({"name", "nom", "nombre", "naam"}),
    "zip_code": frozenset({"code", "codigo"}),
    "website": frozenset({"url", "address", "link"}),
    "created_at": frozenset({"date", "time", "on", "at", "am", "le", "el", "ts", "timestamp", "datum", "fecha", "zeit",
                             "dt", "datetime", "time stamp"}),
    "country": frozenset({"name", "code", "iso"}),
    "state": frozenset({"code", "name"}),
    "city": frozenset({"name"}),
    "external_id": frozenset({"number", "no", "nr", "code", "ref", "reference", "key", "identifier", "nummer", "numero"}),
}

# words that put a column in a block of the same kind; lower rank wins ("Billing" over "Shipping")
QUALIFIERS: dict[str, int] = {
    **dict.fromkeys(("default", "primary", "main", "principal", "preferred", "standard", "haupt"), 0),
    **dict.fromkeys(("billing", "bill", "invoice", "invoicing", "mailing", "postal", "po", "rechnung", "rechnungs",
                     "facturation", "facturacion", "factura"), 1),
    **dict.fromkeys(("business", "work", "office", "geschaftlich", "beruflich", "dienstlich", "buro", "bureau",
                     "travail", "professionnel", "pro", "trabajo", "oficina", "werk"), 2),
    **dict.fromkeys(("home", "private", "privat", "personal", "domicile", "maison", "perso", "casa", "particular",
                     "thuis", "prive"), 3),
    **dict.fromkeys(("physical", "sa", "visiting", "besuch", "besucher"), 4),
    **dict.fromkeys(("shipping", "ship", "delivery", "lieferung", "liefer", "livraison", "envio", "entrega",
                     "levering"), 5),
    **dict.fromkeys(("other", "alternate", "alt", "secondary", "sonstige", "andere", "weitere", "autre", "otro",
                     "otra", "ander"), 6),
}

# the fields of an address block: one block fills them all
ADDRESS_FIELDS = frozenset({"address_line1", "address_line2", "city", "state", "zip_code", "country"})

# a bare name column: the whole name, or the other half of a name next to a first- or last-name column
GENERIC_NAME_WORDS = frozenset({"name", "nom", "nombre", "naam", "nome", "navn"})

# headers meaning "a column about the contact that no target field fits": keep as custom
CUSTOM_HINTS: tuple[str, ...] = (
    "fax", "telefax", "fax number", "birthday", "birth", "birthdate", "bday", "date of birth", "geburtstag",
    "geburtsdatum", "anniversaire", "date de naissance", "cumpleanos", "fecha de nacimiento", "anniversary",
    "salutation", "anrede", "civilite", "tratamiento",
    "name prefix", "name suffix", "middle name", "middle",
    "nickname", "spitzname", "surnom", "apodo", "department", "abteilung", "departement service",
    "departamento", "owner", "lead source", "source", "quelle", "herkunft", "origine", "origen", "status", "stage",
    "lifecycle",     "time zone", "timezone", "zeitzone", "fuseau horaire", "zona horaria", "skype", "twitter",     "facebook", "instagram", "wechat", "telegram", "xing", "assistant", "manager", "spouse",
    "reports to", "po box", "postfach", "boite postale", "apartado", "house number", "hausnummer", "numero de rue",
    "opt out", "unsubscribed", "subscribed", "newsletter", "marketing",
    "consent", "tax", "vat", "tax number", "tax id", "steuernummer", "ust id", "siret", "siren",     "bank", "iban", "bic", "discount", "rabatt", "credit limit", "terms", "payment terms",
    "attention", "attention to", "user login", "username", "login", "benutzername", "anniversaire", "hobby",
    "ticket type", )

# headers meaning "do not import", with how sure each makes the verdict
SKIP_HINTS: dict[str, float] = {
    **dict.fromkeys(("password", "passwort", "pwd", "pass", "user pass", "mot de passe", "contrasena",
                     "wachtwoord"), 1.0),
    **dict.fromkeys(("secret", "api key"), 0.95),
    **dict.fromkeys(("ip", "ip address", "latitude", "longitude", "lat", "lng", "lon", "gmtoff", "dstoff",
                     "gmt offset", "dst offset", "geo", "geolocation"), 0.9),
    **dict.fromkeys(("created by", "modified by", "updated by", "last modified by", "changed by", "erstellt von",
                     "geandert von", "cree par", "modifie par", "creado por", "modificado por"), 0.9),
    **dict.fromkeys(("modified", "updated", "update", "last modified", "modstamp", "system modstamp", "last changed",
                     "changed", "update time", "modified time", "last update",
                     "geandert", "geandert am", "aktualisiert", "letzte anderung", "modifie", "modifie le",
                     "mise a jour", "derniere modification", "modificado", "actualizado", "ultima modificacion",
                     "gewijzigd"), 0.85),
    **dict.fromkeys(("last activity", "next activity", "last login", "last seen", "last visit", "last visited",
                     "last contacted", "last open", "last click", "last attended", "last engagement",
                     "rsvped"), 0.85),
    **dict.fromkeys(("visible to", "visibility", "is deleted", "deleted", "locked", "archived", "master record",
                     "photo", "picture", "avatar", "image", "barcode", "yomi", "phonetic",                                           "clean status", "jigsaw", "enrich status", "leid", "euid", "row number", "line number",
                     "currency", "waehrung", "devise", "moneda",                      "file as"), 0.8),
}

# statistics a tool computes about the contact: not imported when the values are numbers (or empty)
STAT_WORDS = frozenset({
    "count", "counts", "total", "totals", "sum", "balance", "spent", "quantity", "qty", "paid", "fee", "fees",
    "payment processing", "deals", "activities", "orders", "visits", "opens", "clicks", "bounces", "score",
    "rating", "messages", "anzahl", "summe", "saldo", "nombre de", "cantidad", "importe",
})

# records a contact points at: "<word> #" is another record's number ("Order #", "Invoice No"); any
# "<word> id" that is not the record's own is one too ("OwnerId", "Associated Company IDs")
FOREIGN_RECORD_WORDS = frozenset({
    "order", "invoice", "ticket", "transaction", "payment", "deal", "opportunity", "event", "campaign", "list",
    "group", "store", "shop", "barcode", "bestellung", "rechnung", "auftrag", "commande", "facture", "pedido",
    "factura",
})

# words of an id; with other words before them they name another record's id ("Owner ID", "AccountId")
ID_WORDS = frozenset({"id", "ids", "uid", "guid", "uuid", "key", "fk"})

# a row number column: these words only ("#", "No.", "Lfd. Nr.", "Row")
ROW_NUMBER_WORDS = frozenset({"number", "no", "nr", "n", "num", "row", "line", "index", "idx", "pos", "lfd", "laufende",
                              "numero", "nummer", "zeile", "ligne", "fila", "rij"})

# label/type columns describe a sibling column ("Phone 1 - Label" describes "Phone 1 - Value")
LABEL_WORDS = frozenset({"label", "type", "kind", "art", "typ"})
