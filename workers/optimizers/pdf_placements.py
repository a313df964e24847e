"""Where a PDF draws each image, and how large: the extent of its largest placement.

Every page's content stream is walked with its transformation matrix, through form
XObjects, the soft-mask groups of graphics states and the appearance streams of
annotations. An image drawn somewhere the walk cannot measure (a tiling pattern, a
Type 3 glyph, a damaged stream) is reported as unmeasured, so that the caller leaves
it as it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import pikepdf

Matrix = tuple[float, float, float, float, float, float]
ObjGen = tuple[int, int]

IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
# Forms nested deeper than this are not followed; their images are unmeasured.
MAX_DEPTH = 24
# Form invocations one file may cost; past it, the walk gives up on every image.
MAX_INVOCATIONS = 200_000
_OPERATORS = "q Q cm Do gs"
_APPEARANCES = ("/N", "/R", "/D")


class TooComplex(Exception):
    """The file draws its forms more often than the walk is willing to follow."""


@dataclass
class Placements:
    """The largest width and height in points each image is drawn at, per image.

    `extents` is keyed by the image's object number and generation: the longest
    its columns and its rows reach on any page, in default user space units scaled
    by the page's UserUnit. `unmeasured` holds the images drawn somewhere else too.
    """

    extents: dict[ObjGen, tuple[float, float]] = field(default_factory=dict)
    unmeasured: set[ObjGen] = field(default_factory=set)

    def measured(self) -> dict[ObjGen, tuple[float, float]]:
        """The extents of the images whose every placement was measured."""
        return {
            key: extent
            for key, extent in self.extents.items()
            if key not in self.unmeasured
        }


def multiply(first: Matrix, second: Matrix) -> Matrix:
    """`first` applied, then `second`: PDF's `first x second`."""
    a, b, c, d, e, f = first
    a2, b2, c2, d2, e2, f2 = second
    return (
        a * a2 + b * c2,
        a * b2 + b * d2,
        c * a2 + d * c2,
        c * b2 + d * d2,
        e * a2 + f * c2 + e2,
        e * b2 + f * d2 + f2,
    )


def find_placements(pdf: pikepdf.Pdf) -> Placements:
    """The extent of every image's largest placement over all pages."""
    walk = _Walk()
    for page in pdf.pages:
        walk.page(page.obj)
    for holder in _resource_holders(pdf):
        if holder.objgen not in walk.walked:
            walk.unmeasure_all(holder.get("/Resources"))
    return walk.placements


class _Walk:
    """One pass over the pages, accumulating extents."""

    def __init__(self) -> None:
        self.placements = Placements()
        self.walked: set[ObjGen] = set()
        self.invocations = 0
        self._parsed: dict[ObjGen, list] = {}
        self._unmeasured_resources: set[ObjGen] = set()

    def page(self, page: pikepdf.Dictionary) -> None:
        resources, owner = _inherited_resources(page)
        unit = _number(page.get("/UserUnit"), 1.0)
        base: Matrix = (unit, 0.0, 0.0, unit, 0.0, 0.0)
        try:
            instructions = pikepdf.parse_content_stream(page, _OPERATORS)
        except (pikepdf.PdfError, ValueError, TypeError):
            instructions = None
        if instructions is not None:
            self.walked.add(page.objgen)
            if owner is not None:
                self.walked.add(owner.objgen)
            self._run(instructions, resources, base, 0, ())
        for annotation in _list(page.get("/Annots")):
            self._annotation(annotation, resources, base)

    def _annotation(
        self, annotation: pikepdf.Object, resources: pikepdf.Object, base: Matrix
    ) -> None:
        if not isinstance(annotation, pikepdf.Dictionary):
            return
        appearances = annotation.get("/AP")
        rect = _numbers(annotation.get("/Rect"), 4)
        if not isinstance(appearances, pikepdf.Dictionary) or rect is None:
            return
        for key in _APPEARANCES:
            for form in _appearance_streams(appearances.get(key)):
                placed = _appearance_matrix(form, rect)
                if placed is not None:
                    self.form(form, resources, multiply(placed, base), 0, ())

    def form(
        self,
        form: pikepdf.Stream,
        resources: pikepdf.Object,
        ctm: Matrix,
        depth: int,
        stack: tuple[ObjGen, ...],
    ) -> None:
        """Walk a form XObject drawn with `ctm` (its own /Matrix not yet applied)."""
        self.invocations += 1
        if self.invocations > MAX_INVOCATIONS:
            raise TooComplex
        key = form.objgen
        if depth >= MAX_DEPTH or key in stack:
            self.unmeasure_all(form.get("/Resources"))
            return
        own = form.get("/Resources")
        if isinstance(own, pikepdf.Dictionary):
            resources = own
        instructions = self._instructions(form)
        if instructions is None:
            self.unmeasure_all(resources)
            return
        self.walked.add(key)
        matrix = _numbers(form.get("/Matrix"), 6)
        if matrix is not None:
            ctm = multiply(matrix, ctm)
        self._run(instructions, resources, ctm, depth + 1, (*stack, key))

    def _instructions(self, form: pikepdf.Stream) -> list | None:
        key = form.objgen
        if key not in self._parsed:
            try:
                self._parsed[key] = pikepdf.parse_content_stream(form, _OPERATORS)
            except (pikepdf.PdfError, ValueError, TypeError):
                return None
        return self._parsed[key]

    def _run(
        self,
        instructions: list,
        resources: pikepdf.Object,
        ctm: Matrix,
        depth: int,
        stack: tuple[ObjGen, ...],
    ) -> None:
        if _has_type3_without_resources(resources):
            # Its glyphs may draw these images at a size only the text knows.
            self.unmeasure_all(resources)
        saved: list[Matrix] = []
        for operands, operator in instructions:
            name = str(operator)
            if name == "q":
                saved.append(ctm)
            elif name == "Q":
                if saved:
                    ctm = saved.pop()
            elif name == "cm":
                matrix = _numbers(operands, 6)
                if matrix is not None:
                    ctm = multiply(matrix, ctm)
            elif name == "Do" and operands:
                self._draw(operands[0], resources, ctm, depth, stack)
            elif name == "gs" and operands:
                self._soft_mask(operands[0], resources, ctm, depth, stack)

    def _draw(
        self,
        name: pikepdf.Object,
        resources: pikepdf.Object,
        ctm: Matrix,
        depth: int,
        stack: tuple[ObjGen, ...],
    ) -> None:
        xobject = _resource(resources, "/XObject", name)
        if not isinstance(xobject, pikepdf.Stream):
            return
        subtype = xobject.get("/Subtype")
        if subtype == "/Image":
            self._record(xobject, ctm)
        elif subtype == "/Form":
            self.form(xobject, resources, ctm, depth, stack)

    def _soft_mask(
        self,
        name: pikepdf.Object,
        resources: pikepdf.Object,
        ctm: Matrix,
        depth: int,
        stack: tuple[ObjGen, ...],
    ) -> None:
        state = _resource(resources, "/ExtGState", name)
        if not isinstance(state, pikepdf.Dictionary):
            return
        mask = state.get("/SMask")
        if isinstance(mask, pikepdf.Dictionary):
            group = mask.get("/G")
            if isinstance(group, pikepdf.Stream):
                self.form(group, resources, ctm, depth, stack)

    def _record(self, image: pikepdf.Stream, ctm: Matrix) -> None:
        a, b, c, d, _, _ = ctm
        width, height = math.hypot(a, b), math.hypot(c, d)
        key = image.objgen
        old_width, old_height = self.placements.extents.get(key, (0.0, 0.0))
        self.placements.extents[key] = max(old_width, width), max(old_height, height)

    def unmeasure_all(self, resources: pikepdf.Object) -> None:
        """Every image reachable from `resources`, through forms, is unmeasured."""
        pending = [resources]
        while pending:
            current = pending.pop()
            if not isinstance(current, pikepdf.Dictionary):
                continue
            if current.is_indirect:
                if current.objgen in self._unmeasured_resources:
                    continue
                self._unmeasured_resources.add(current.objgen)
            for xobject in _values(current.get("/XObject")):
                if not isinstance(xobject, pikepdf.Stream):
                    continue
                if xobject.get("/Subtype") == "/Image":
                    self.placements.unmeasured.add(xobject.objgen)
                elif xobject.get("/Subtype") == "/Form":
                    if xobject.objgen in self._unmeasured_resources:
                        continue
                    self._unmeasured_resources.add(xobject.objgen)
                    pending.append(xobject.get("/Resources"))


def _resource_holders(pdf: pikepdf.Pdf) -> Iterator[pikepdf.Object]:
    """Every object with its own /Resources: pages, forms, patterns, Type 3 fonts."""
    for obj in pdf.objects:
        if isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)) and (
            "/Resources" in obj
        ):
            yield obj


def _inherited_resources(
    page: pikepdf.Dictionary,
) -> tuple[pikepdf.Object, pikepdf.Object | None]:
    """The page's resources, and the page tree node they came from, if not the page."""
    node: pikepdf.Object = page
    seen: set[ObjGen] = set()
    while isinstance(node, pikepdf.Dictionary) and node.objgen not in seen:
        seen.add(node.objgen)
        resources = node.get("/Resources")
        if isinstance(resources, pikepdf.Dictionary):
            return resources, None if node is page else node
        node = node.get("/Parent")
    return pikepdf.Dictionary(), None


def _has_type3_without_resources(resources: pikepdf.Object) -> bool:
    return any(
        isinstance(font, pikepdf.Dictionary)
        and font.get("/Subtype") == "/Type3"
        and not isinstance(font.get("/Resources"), pikepdf.Dictionary)
        for font in _values(
            resources.get("/Font")
            if isinstance(resources, pikepdf.Dictionary)
            else None
        )
    )


def _appearance_streams(entry: pikepdf.Object) -> Iterator[pikepdf.Stream]:
    """An appearance entry's streams: itself, or one per appearance state."""
    if isinstance(entry, pikepdf.Stream):
        yield entry
    elif isinstance(entry, pikepdf.Dictionary):
        for value in entry.values():
            if isinstance(value, pikepdf.Stream):
                yield value


def _appearance_matrix(form: pikepdf.Stream, rect: tuple) -> Matrix | None:
    """The matrix that fits the form's transformed bounding box to the annotation.

    PDF 32000-1 12.5.5: the form is drawn with its /Matrix, then this fit;
    `_Walk.form` applies the /Matrix itself.
    """
    box = _numbers(form.get("/BBox"), 4)
    if box is None:
        return None
    matrix = _numbers(form.get("/Matrix"), 6) or IDENTITY
    corners = [_apply(matrix, x, y) for x in (box[0], box[2]) for y in (box[1], box[3])]
    xs = [x for x, _ in corners]
    ys = [y for _, y in corners]
    width, height = max(xs) - min(xs), max(ys) - min(ys)
    left, bottom, right, top = rect
    if width <= 0 or height <= 0:
        return None
    scale_x = abs(right - left) / width
    scale_y = abs(top - bottom) / height
    return (
        scale_x,
        0.0,
        0.0,
        scale_y,
        min(left, right) - min(xs) * scale_x,
        min(bottom, top) - min(ys) * scale_y,
    )


def _apply(matrix: Matrix, x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f = matrix
    return a * x + c * y + e, b * x + d * y + f


def _resource(
    resources: pikepdf.Object, category: str, name: pikepdf.Object
) -> pikepdf.Object | None:
    if not isinstance(resources, pikepdf.Dictionary) or not isinstance(
        name, pikepdf.Name
    ):
        return None
    entries = resources.get(category)
    if not isinstance(entries, pikepdf.Dictionary):
        return None
    return entries.get(str(name))


def _values(entries: pikepdf.Object | None) -> list[pikepdf.Object]:
    if not isinstance(entries, pikepdf.Dictionary):
        return []
    return list(entries.values())


def _list(entries: pikepdf.Object | None) -> list[pikepdf.Object]:
    if not isinstance(entries, pikepdf.Array):
        return []
    return list(entries)


def _number(value: pikepdf.Object | None, default: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) and number > 0 else default


def _numbers(values: object, count: int) -> tuple | None:
    """`count` finite numbers from a PDF array or an operand list, or None."""
    try:
        numbers = tuple(float(value) for value in values)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(math.isfinite(n) for n in numbers):
        return None
    return numbers
