"""The target fields of the templates that map columns by name (files, sheets, pushes).

A template with file-like sources names its fields here, with a description (shown to the AI
and to people) and a kind (what the values look like). Database sources use the same field
lists: a source table's columns are matched like a file's headers, with their declared types.
"""

from __future__ import annotations

from import_pipelines.mapping.model import TargetField

CONTACT_FIELDS: tuple[TargetField, ...] = (
    TargetField(name="first_name", kind="name", description="given name (first name) of the person"),
    TargetField(name="last_name", kind="name", description="family name (surname, last name) of the person"),
    TargetField(name="full_name", kind="name", description=(
        "the whole name in one column; used only when there are no separate first and last name columns: a later "
        "step splits it at a comma ('Last, First'), otherwise takes the last word as the last name and the rest as "
        "the first name")),
    TargetField(name="email", kind="email", description="the main email address"),
    TargetField(name="phone", kind="phone", description="the main landline or work phone number"),
    TargetField(name="mobile", kind="phone", description="the mobile (cell) phone number"),
    TargetField(name="company", kind="text", description="the organisation (company, account) the person belongs to"),
    TargetField(name="job_title", kind="text", description="the person's job title or position (not a courtesy title like Mr. or Dr.)"),
    TargetField(name="address_line1", kind="address", description="street and house number (first address line)"),
    TargetField(name="address_line2", kind="address", description="second address line: apartment, suite, building, floor"),
    TargetField(name="city", kind="city", description="city, town or locality"),
    TargetField(name="state", kind="state", description="state, province, region or county"),
    TargetField(name="zip_code", kind="postcode", description="postal code (ZIP code)"),
    TargetField(name="country", kind="country", description="country, by name or ISO code"),
    TargetField(name="website", kind="url", description="website or home page URL"),
    TargetField(name="notes", kind="notes", description="free-text notes, comments, description"),
    TargetField(name="created_at", kind="date", description="when the contact was created or added in the other system"),
    TargetField(name="tags", kind="tags", description="tags, labels, categories or groups"),
    TargetField(name="external_id", kind="id", description=(
        "the record's own id in the exporting system (kept to recognise the record on re-import); not the ids of "
        "other records such as owners, companies or orders")),
)

TEMPLATE_FIELDS: dict[str, tuple[TargetField, ...]] = {"contacts": CONTACT_FIELDS}


def template_fields(template: str) -> tuple[TargetField, ...]:
    """The target fields of ``template``; an unknown name is an error listing the known ones."""
    try:
        return TEMPLATE_FIELDS[template]
    except KeyError:
        raise ValueError(f"no field list for template {template!r}; known: {', '.join(sorted(TEMPLATE_FIELDS))}") from None
