from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api.serializers import TokenRequestSerializer, TokenSerializer


class TokenView(APIView):
    # No session authentication here: scripts call it without a CSRF token.
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Get an API token",
        description="Exchange a username and password for a token; send it as `Authorization: Token <token>`. "
        "The same token is returned until it is deleted in the admin.",
        request=TokenRequestSerializer,
        responses={200: TokenSerializer, 400: OpenApiResponse(description="Wrong username or password.")},
        auth=[],
    )
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, **data.validated_data)
        if user is None or not user.is_active:
            raise ValidationError({"detail": "Unable to log in with the given username and password."})
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
