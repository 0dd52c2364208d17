from django.urls import path, register_converter

from campaigns.clicks import views
from campaigns.clicks.links import TOKEN_PATTERN


class TokenConverter:
    regex = TOKEN_PATTERN

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(TokenConverter, "link_token")

urlpatterns = [path("<link_token:token>", views.follow, name="tracked-link")]
