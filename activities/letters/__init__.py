"""Letters: jinja2 templates (templates/letters) rendered to archived PDF/A by WeasyPrint.

Heavy imports (weasyprint, jinja2) stay inside this package; import the renderer from
``activities.letters.renderer``.
"""
