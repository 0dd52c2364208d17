from django import forms
from django.core.validators import MaxValueValidator

from templates_app.models import MessageTemplate, PhoneNumber, WhatsAppAccount

CATEGORIES = ["MARKETING", "UTILITY", "AUTHENTICATION"]


class AccountForm(forms.Form):
    """A new account; `account_create` checks the token with Meta before storing it."""

    waba_id = forms.RegexField(
        label="WhatsApp Business Account id",
        regex=r"^\d{5,32}$",
        error_messages={"invalid": "A WABA id is the number shown in Meta Business Manager."},
    )
    name = forms.CharField(
        max_length=200, required=False, help_text="Leave empty to use the name Meta has."
    )
    # Secrets are write-only: PasswordInput never renders a value back into the page.
    access_token = forms.CharField(widget=forms.PasswordInput(render_value=False))
    app_secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Signs this account's webhooks; the server's app secret is used if empty.",
    )

    def clean_waba_id(self):
        waba_id = self.cleaned_data["waba_id"]
        if WhatsAppAccount.objects.filter(waba_id=waba_id).exists():
            raise forms.ValidationError("This WhatsApp account is already added.")
        return waba_id


class PhoneRateForm(forms.Form):
    max_mps = forms.IntegerField(label="Max messages per second", min_value=1)

    def __init__(self, *args, phone: PhoneNumber, **kwargs):
        super().__init__(*args, **kwargs)
        self.phone = phone
        field = self.fields["max_mps"]
        field.validators.append(MaxValueValidator(phone.rate_ceiling))
        field.widget.attrs.update(max=phone.rate_ceiling, min=1)


class TemplateFilterForm(forms.Form):
    account = forms.ModelChoiceField(
        queryset=WhatsAppAccount.objects.order_by("name", "id"),
        required=False,
        empty_label="Any account",
    )
    status = forms.ChoiceField(required=False)
    category = forms.ChoiceField(required=False)
    language = forms.ChoiceField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "Any status"), *MessageTemplate.Status.choices]
        self.fields["category"].choices = [("", "Any category")] + [(c, c) for c in CATEGORIES]
        languages = MessageTemplate.objects.order_by("language").values_list("language", flat=True)
        self.fields["language"].choices = [("", "Any language")] + [
            (code, code) for code in languages.distinct()
        ]

    def filter(self, queryset):
        if not self.is_valid():
            return queryset
        data = {key: value for key, value in self.cleaned_data.items() if value}
        return queryset.filter(**data)
