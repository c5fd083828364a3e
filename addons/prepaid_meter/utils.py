"""Small helpers shared by the suite's add-ons."""


def selection_label(record, field_name, value):
    """The label of ``value`` of the selection field ``field_name`` of ``record``'s model,
    in the language of ``record``'s environment (the value itself when it has none): what a
    message shows instead of a technical value."""
    selection = record._fields[field_name]._description_selection(record.env)
    return dict(selection).get(value, value or "")
