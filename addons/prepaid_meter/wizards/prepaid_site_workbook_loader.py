"""M9: the site workbook's rows made into records, sheet after sheet, every problem kept.

The loader resolves each row's references (a building by its site's code and its name,
a meter model by its code or name, ...) to records created from earlier sheets or already
in the database, creates each sheet's records in one batch and, when the batch is refused,
row by row to name every refused row.  The models' own constraints decide what is valid;
the loader only names the column they checked.  The caller rolls everything back when any
problem was found.
"""

import logging
import traceback

import psycopg2

from odoo import fields
from odoo.exceptions import UserError, ValidationError

from prepaid_core import onboarding
from prepaid_core.onboarding import SHEETS, Problem

_logger = logging.getLogger(__name__)

#: the workbook's yes
YES = frozenset({"yes", "y", "true", "1", "x", "是"})


def problem_message(env, problem):
    """The text of a problem, translated: those the checks name by a key of
    ``prepaid_core.onboarding`` with their ``args``, the models' own as they raised them."""
    args = problem.args
    match problem.message:
        case onboarding.NOT_A_WORKBOOK:
            return env._("not an Excel workbook (.xlsx)")
        case onboarding.COLUMN_MISSING:
            return env._("column missing")
        case onboarding.NO_SITE:
            return env._("no site with code %(site)s", **args)
        case onboarding.NO_BUILDING:
            return env._("no building %(building)s on site %(site)s", **args)
        case onboarding.NO_UNIT:
            return env._("no unit %(unit)s in building %(building)s", **args)
        case onboarding.NO_MODEL:
            return env._("unknown meter model %(model)s", **args)
        case onboarding.NO_GATEWAY:
            return env._("no gateway %(gateway)s", **args)
        case onboarding.NO_BUS:
            return env._("gateway %(gateway)s has no bus %(bus)s", **args)
        case onboarding.NOT_A_NUMBER:
            return env._("%(value)s is not a number", **args)
        case onboarding.NOT_A_DATE:
            return env._("%(value)s is not a date (YYYY-MM-DD)", **args)
        case onboarding.NOT_A_CHOICE:
            return env._("%(value)s is not one of: %(choices)s", **args)
    return problem.message


def problem_values(env, problem):
    """The values of an error line (sheet, row, column, message) of ``problem``."""
    return {
        "sheet": problem.sheet,
        "row": problem.row,
        "column": problem.column,
        "message": problem_message(env, problem),
    }


class SiteWorkbookLoader:
    """Creates the records of one workbook in the current transaction (see module)."""

    def __init__(self, env, workbook):
        # a site's records are logged as imported, not one chatter message each
        self.env = env(
            context=dict(
                env.context,
                tracking_disable=True,
                mail_create_nolog=True,
                mail_create_nosubscribe=True,
            )
        )
        self.rows = workbook.rows
        self.problems = list(workbook.problems)
        self.company = env.company
        self.sites, self.buildings, self.floors, self.units = {}, {}, {}, {}
        self.gateways, self.buses, self.models = {}, {}, {}
        self.counts = {}

    # === ORCHESTRATION === #
    def load(self):
        """Every sheet in order; returns the problems (none: all created)."""
        self.load_existing()
        for sheet in SHEETS:
            self.load_rows(sheet, self.rows.get(sheet))
        return self.problems

    def load_rows(self, sheet, rows):
        """The records of ``rows`` of ``sheet`` (a whole sheet or, in a background import,
        a batch of it after the previous ones): created, or their problems kept."""
        if not rows:
            return
        step = {
            "Sites": self._load_sites,
            "Buildings": self._load_buildings,
            "Units": self._load_units,
            "Gateways": self._load_gateways,
            "Meters": self._load_meters,
            "Tenants": self._load_tenants,
        }[sheet]
        step(rows)
        self.counts[sheet] = self.counts.get(sheet, 0) + len(rows)

    def problem(self, row, key, message, **args):
        """``message``: a key of ``prepaid_core.onboarding`` with its ``args``, or a text."""
        header = next((c.header for c in SHEETS[row.sheet] if c.key == key), key)
        self.problems.append(Problem(row.sheet, row.number, header, message, args))

    # === WHAT IS ALREADY THERE === #
    def load_existing(self):
        """The company's sites, buildings, floors, units, gateways and buses and the meter
        models, by the keys the workbook names them with."""
        env = self.env
        for site in env["prepaid.site"].search([("company_id", "=", self.company.id)]):
            self.sites[(site.code or "").casefold()] = site
        for building in env["prepaid.building"].search([("company_id", "=", self.company.id)]):
            self.buildings[(building.site_id.id, building.name.casefold())] = building
        for floor in env["prepaid.floor"].search([("company_id", "=", self.company.id)]):
            self.floors[(floor.building_id.id, floor.name.casefold())] = floor
        for unit in env["prepaid.unit"].search([("company_id", "=", self.company.id)]):
            self.units[(unit.building_id.id, unit.name.casefold())] = unit
        for gateway in env["prepaid.gateway"].search([("company_id", "=", self.company.id)]):
            self.gateways[gateway.name.casefold()] = gateway
            for bus in gateway.bus_ids:
                self.buses[(gateway.id, bus.number)] = bus
        for model in env["prepaid.meter.model"].with_context(active_test=False).search([]):
            self.models.setdefault(model.name.casefold(), model)
            self.models[model.code.casefold()] = model

    def known(self):
        """What the database holds, as the keys ``onboarding.check_workbook`` compares the
        workbook's references with (call after :meth:`load_existing`)."""

        def key(record):
            return (record.code if "code" in record._fields else record.name).casefold()

        return onboarding.Known(
            sites=set(self.sites),
            buildings={(key(b.site_id), name) for (_site, name), b in self.buildings.items()},
            units={
                (key(u.building_id.site_id), key(u.building_id), name)
                for (_building, name), u in self.units.items()
            },
            buses={name: {bus.number for bus in g.bus_ids} for name, g in self.gateways.items()},
            models=set(self.models),
            choices={
                "Units": {"unit_type": self.accepted_choices("prepaid.unit", "unit_type")},
                "Gateways": {
                    "gateway_type": self.accepted_choices("prepaid.gateway", "gateway_type"),
                    "protocol": self.accepted_choices("prepaid.gateway.bus", "protocol"),
                },
            },
        )

    # === REFERENCES === #
    def _site(self, row):
        site = self.sites.get(row.get("site").casefold())
        if not site:
            self.problem(row, "site", onboarding.NO_SITE, site=row.get("site"))
        return site

    def _child(self, row, key, parent, known, message, **args):
        """The record named by cell ``key`` under ``parent`` in ``known`` (``{(parent id,
        name): record}``); ``message`` a problem when the parent has none of that name."""
        record = parent and known.get((parent.id, row.get(key).casefold()))
        if parent and not record:
            self.problem(row, key, message, **args)
        return record

    def _building(self, row):
        site = self._site(row)
        building = row.get("building")
        args = {"building": building, "site": row.get("site")}
        return self._child(row, "building", site, self.buildings, onboarding.NO_BUILDING, **args)

    def _unit(self, row):
        if not row.get("unit"):
            return self.env["prepaid.unit"]
        building = self._building(row)
        args = {"unit": row.get("unit"), "building": row.get("building")}
        return self._child(row, "unit", building, self.units, onboarding.NO_UNIT, **args)

    def _selection(self, row, key, model, field_name):
        """A selection cell: its technical value or its label, in English or translated."""
        text = row.get(key)
        if not text:
            return None
        accepted = self.accepted_choices(model, field_name)
        if text.casefold() in accepted:
            return accepted[text.casefold()]
        choices = ", ".join(dict.fromkeys(accepted.values()))
        self.problem(row, key, onboarding.NOT_A_CHOICE, value=text, choices=choices)
        return None

    def accepted_choices(self, model, field_name):
        """``{text: value}`` of a selection field: its values and their labels, in the
        user's language and in English, case-folded."""
        field = self.env[model]._fields[field_name]
        choices = field._description_selection(self.env)
        english = field._description_selection(self.env(context={"lang": "en_US"}))
        accepted = {value.casefold(): value for value, _label in choices}
        for value, label in [*choices, *english]:
            accepted.setdefault(label.casefold(), value)
        return accepted

    def _number(self, row, key, kind=float):
        text = row.get(key)
        if text in ("", None):
            return None
        try:
            return kind(text)
        except ValueError:
            self.problem(row, key, onboarding.NOT_A_NUMBER, value=text)
            return None

    def _date(self, row, key):
        value = row.get(key)
        if not value:
            return None
        try:
            return fields.Date.to_date(value)
        except ValueError:
            self.problem(row, key, onboarding.NOT_A_DATE, value=value)
            return None

    # === CREATION, ROW ERRORS NAMED === #
    def _create(self, model, items, columns):
        """``[(row, record)]`` of ``items`` (``[(row, vals)]``) created: in one batch, or
        row by row when the batch is refused, every refused row a problem in the column
        of ``columns`` (``{field: row key}``) that the refusing rule checks."""
        Model = self.env[model]
        if not items:
            return []
        try:
            with self.env.cr.savepoint():
                records = Model.create([vals for _row, vals in items])
            return list(zip([row for row, _vals in items], records, strict=True))
        except (UserError, psycopg2.Error) as error:
            _logger.info("%s: batch refused (%s); rows checked one by one", model, error)
        created = []
        for row, vals in items:
            try:
                with self.env.cr.savepoint():
                    created.append((row, Model.create(vals)))
            except UserError as error:
                key = self._checked_column(Model, error, columns)
                self.problem(row, key, str(error))
            except psycopg2.IntegrityError as error:
                key = self._index_column(Model, error, columns)
                self.problem(row, key, Model._sql_error_to_message(error))
        return created

    @staticmethod
    def _checked_column(Model, error, columns):
        """The column of the field checked by the constraint that raised ``error``."""
        raised_in = {
            frame.f_code.co_name for frame, _line in traceback.walk_tb(error.__traceback__)
        }
        for check in Model._constraint_methods:
            if check.__name__ in raised_in and isinstance(error, ValidationError):
                names = check._constrains
                names = names(Model) if callable(names) else names
                for name in names:
                    if name in columns:
                        return columns[name]
        return ""

    @staticmethod
    def _index_column(Model, error, columns):
        """The column of a refused unique key: its last field the workbook gives (the one
        that tells records apart), or the column left empty."""
        if error.diag.column_name in columns:
            return columns[error.diag.column_name]
        index = Model._table_objects.get(error.diag.constraint_name)
        definition = index.get_definition(Model.pool).split(" WHERE ")[0] if index else ""
        named = [name for name in columns if name in definition]
        named.sort(key=definition.rfind)
        return columns[named[-1]] if named else ""

    # === SHEETS === #
    def _load_sites(self, rows):
        items = [
            (row, {"code": row.get("code"), "name": row.get("name"), "company_id": self.company.id})
            for row in rows
        ]
        created = self._create("prepaid.site", items, {"code": "code", "name": "name"})
        for _row, site in created:
            self.sites[site.code.casefold()] = site
        return created

    def _load_buildings(self, rows):
        items = []
        for row in rows:
            site = self._site(row)
            if site:
                items.append((row, {"site_id": site.id, "name": row.get("name")}))
        created = self._create("prepaid.building", items, {"name": "name", "site_id": "site"})
        for _row, building in created:
            self.buildings[(building.site_id.id, building.name.casefold())] = building
        return created

    def _floor(self, building, name):
        """The building's floor of that name, created on first use."""
        key = (building.id, name.casefold())
        if key not in self.floors:
            self.floors[key] = self.env["prepaid.floor"].create(
                {"building_id": building.id, "name": name}
            )
        return self.floors[key]

    def _unit_vals(self, row):
        building = self._building(row)
        area = self._number(row, "area")
        unit_type = self._selection(row, "unit_type", "prepaid.unit", "unit_type")
        if not building:
            return None
        vals = {"building_id": building.id, "name": row.get("name"), "area": area or 0.0}
        if unit_type:
            vals["unit_type"] = unit_type
        if row.get("floor"):
            vals["floor_id"] = self._floor(building, row.get("floor")).id
        return vals

    def _load_units(self, rows):
        items = [(row, vals) for row in rows if (vals := self._unit_vals(row))]
        created = self._create(
            "prepaid.unit",
            items,
            {"name": "name", "building_id": "building", "floor_id": "floor", "area": "area"},
        )
        for _row, unit in created:
            self.units[(unit.building_id.id, unit.name.casefold())] = unit
        return created

    def _load_gateways(self, rows):
        """A row per bus; the gateway's own cells are read from its first row."""
        first_rows = {}
        for row in rows:
            first_rows.setdefault(row.get("name").casefold(), row)
        items = []
        for key, row in first_rows.items():
            site = self._site(row)
            gateway_type = self._selection(row, "gateway_type", "prepaid.gateway", "gateway_type")
            if key in self.gateways:
                continue
            vals = {"name": row.get("name"), "company_id": self.company.id}
            vals.update(site_id=site.id if site else False, host=row.get("host") or False)
            vals.update(serial=row.get("serial") or False, gateway_type=gateway_type)
            items.append((row, {k: v for k, v in vals.items() if v is not None}))
        created = self._create("prepaid.gateway", items, {"name": "name", "host": "host"})
        for _row, gateway in created:
            self.gateways[gateway.name.casefold()] = gateway
        return created + self._load_buses(rows)

    def _load_buses(self, rows):
        items = []
        for row in rows:
            gateway = self.gateways.get(row.get("name").casefold())
            number = self._number(row, "bus", int)
            port = self._number(row, "port", int)
            protocol = self._selection(row, "protocol", "prepaid.gateway.bus", "protocol")
            if gateway and number is not None:
                vals = {"gateway_id": gateway.id, "number": number, "port": port or 0}
                if protocol:
                    vals["protocol"] = protocol
                items.append((row, vals))
        created = self._create(
            "prepaid.gateway.bus",
            items,
            {"number": "bus", "port": "port", "protocol": "protocol"},
        )
        for _row, bus in created:
            self.buses[(bus.gateway_id.id, bus.number)] = bus
        return created

    def _meter_link(self, row):
        """``(gateway, bus)`` of a meter row (empty records when not given)."""
        gateway = self.env["prepaid.gateway"]
        bus = self.env["prepaid.gateway.bus"]
        if row.get("gateway"):
            gateway = self.gateways.get(row.get("gateway").casefold())
            if not gateway:
                self.problem(row, "gateway", onboarding.NO_GATEWAY, gateway=row.get("gateway"))
                return None, None
        number = self._number(row, "bus", int)
        if gateway and number is not None:
            bus = self.buses.get((gateway.id, number))
            if not bus:
                self.problem(row, "bus", onboarding.NO_BUS, gateway=gateway.name, bus=number)
        return gateway, bus

    def _meter_vals(self, row):
        model = self.models.get(row.get("model").casefold())
        if not model:
            self.problem(row, "model", onboarding.NO_MODEL, model=row.get("model"))
        # a meter of the building's common areas has no unit
        unit = self._unit(row) if row.get("unit") else self.env["prepaid.unit"]
        placed = bool(unit) if row.get("unit") else bool(self._building(row))
        gateway, bus = self._meter_link(row)
        if not (model and placed) or gateway is None:
            return None
        return {
            "name": row.get("name"),
            "serial": row.get("serial") or False,
            "address": row.get("address") or False,
            "model_id": model.id,
            "unit_id": unit.id,
            "company_id": self.company.id,
            "gateway_id": gateway.id,
            "bus_id": bus.id,
        }

    def _load_meters(self, rows):
        items = [(row, vals) for row in rows if (vals := self._meter_vals(row))]
        return self._create(
            "prepaid.meter",
            items,
            {
                "name": "name",
                "serial": "serial",
                "address": "address",
                "model_id": "model",
                "unit_id": "unit",
                "gateway_id": "gateway",
                "bus_id": "bus",
            },
        )

    @staticmethod
    def _tenant_key(row):
        return row.get("phone") or row.get("email") or (row.get("name"), row.number)

    def _tenants(self, rows):
        """``{row number: partner}``: a partner with the row's phone (or email) reused,
        the others created at once, one per phone (or email) of the file."""
        Partner = self.env["res.partner"]
        phones = [row.get("phone") for row in rows if row.get("phone")]
        emails = [row.get("email") for row in rows if row.get("email")]
        known = {}
        if phones or emails:
            for partner in Partner.search(["|", ("phone", "in", phones), ("email", "in", emails)]):
                known.setdefault(partner.phone, partner)
                known.setdefault(partner.email, partner)
        missing = {}
        for row in rows:
            if self._tenant_key(row) not in known:
                missing.setdefault(self._tenant_key(row), row)
        new = Partner.create(
            [
                {
                    "name": row.get("name"),
                    "phone": row.get("phone") or False,
                    "email": row.get("email") or False,
                }
                for row in missing.values()
            ]
        )
        known.update(zip(missing, new, strict=True))
        return {row.number: known[self._tenant_key(row)] for row in rows}

    def _load_tenants(self, rows):
        items = []
        for row in rows:
            unit = self._unit(row)
            start, end = self._date(row, "date_start"), self._date(row, "date_end")
            if unit and start:
                items.append((row, {"unit_id": unit.id, "date_start": start, "date_end": end}))
        partners = self._tenants([row for row, _vals in items])
        for row, vals in items:
            vals["partner_id"] = partners[row.number].id
        created = self._create(
            "prepaid.tenancy",
            items,
            {"date_start": "date_start", "date_end": "date_end", "unit_id": "unit"},
        )
        self._open_tenancies([(r, t) for r, t in created if r.get("open").casefold() in YES])
        return created

    def _open_tenancies(self, items):
        """Account opening of the rows that ask for it: at once, or row by row to name the
        rows refused (a tenancy overlapping another of its unit)."""
        tenancies = self.env["prepaid.tenancy"].union(*(tenancy for _row, tenancy in items))
        try:
            with self.env.cr.savepoint():
                tenancies.action_open()
            return
        except UserError as error:
            _logger.info("tenancies not opened at once (%s); opened one by one", error)
        for row, tenancy in items:
            try:
                with self.env.cr.savepoint():
                    tenancy.action_open()
            except UserError as error:
                self.problem(row, "open", str(error))
