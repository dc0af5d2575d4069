"""Tencent Cloud SMS (短信) through its own SDK, tencentcloud-sdk-python-sms: the asyncio
client (httpx), requests signed with TC3-HMAC-SHA256. The endpoint and scheme come from the
config, so tests point the real client at a local fake of the API."""

from __future__ import annotations

import logging

from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models
from tencentcloud.sms.v20210111.sms_client_async import SmsClient

from adapters.sms.provider import SmsRefused, TemplateSms
from bot.config import SmsConfig

# Per-number answers that a later try may get past; every other non-Ok code is final for
# this message (a wrong or blocked number, an unapproved template or signature).
RETRY_CODES = ("LimitExceeded.", "InternalError.", "FailedOperation.InsufficientBalance")
# API errors about the request itself: sending it again changes nothing. An unapproved
# template or signature comes back as a request error (FailedOperation.…), not per number.
REFUSED_ERRORS = ("InvalidParameter", "InvalidParameterValue", "MissingParameter",
                  "UnsupportedOperation", "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
                  "FailedOperation.TemplateIncorrectOrUnapproved",
                  "FailedOperation.TemplateUnapprovedOrNotExist",
                  "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                  "FailedOperation.SignatureIncorrectOrUnapproved",
                  "FailedOperation.MissingSignature")


# The SDK logs whole requests at DEBUG, the caller's number among them: never below WARNING.
logging.getLogger("tencentcloud_sdk_common").setLevel(logging.WARNING)


class TencentSms:
    def __init__(self, config: SmsConfig) -> None:
        self.config = config
        http = HttpProfile(protocol=config.scheme, endpoint=config.endpoint,
                           reqTimeout=config.timeout_s)
        self.client = SmsClient(Credential(config.secret_id, config.secret_key),
                                config.region, ClientProfile(httpProfile=http))

    async def send(self, message: TemplateSms) -> None:
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [message.phone]
        request.SmsSdkAppId = self.config.sdk_app_id
        request.SignName = self.config.sign_name
        request.TemplateId = message.template_id
        request.TemplateParamSet = list(message.params)
        request.SessionContext = message.context
        try:
            answer = await self.client.SendSms(request)
        except TencentCloudSDKException as exc:
            if str(exc.code or "").startswith(REFUSED_ERRORS):
                raise SmsRefused(f"{exc.code}: {exc.message}") from exc
            raise
        statuses = answer.SendStatusSet or []
        if not statuses:
            raise RuntimeError("Tencent SMS answered without a send status")
        code = statuses[0].Code or ""
        if code == "Ok":
            return
        if code.startswith(RETRY_CODES):
            raise RuntimeError(f"Tencent SMS: {code}")
        raise SmsRefused(f"Tencent SMS: {code}")

    async def approved(self, template_ids: list[str]) -> set[str]:
        request = models.DescribeSmsTemplateListRequest()
        request.International = 0
        request.TemplateIdSet = [int(i) for i in template_ids if i.isdigit()]
        answer = await self.client.DescribeSmsTemplateList(request)
        return {str(s.TemplateId) for s in answer.DescribeTemplateStatusSet or []
                if s.StatusCode == 0}

    async def close(self) -> None:
        await self.client.close()
