"""Server-rendered annotator pages. The annotate page is a shell: its script talks to the REST API."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from .models import Membership
from .page_data import home_projects, recent_decisions
from .permissions import visible_projects, with_role
from .rendering import render_markdown


@login_required
def home(request):
    return render(request, "feedback/home.html", {"entries": home_projects(request.user)})


@login_required
def annotate(request, project_id: int):
    # Non-members get 404, like the API: a project's existence is not revealed to outsiders.
    project = get_object_or_404(with_role(visible_projects(request.user), request.user), pk=project_id)
    context = {
        "project": project,
        "is_admin": project.my_role == Membership.Role.ADMIN,
        "guidelines_html": render_markdown(project.guidelines),
        "recent": recent_decisions(request.user, project),
    }
    return render(request, "feedback/annotate.html", context)
