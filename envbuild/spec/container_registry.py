"""`docker.base_image_registry`: the private registry a base image is pulled from, as in the Azure ML SDK.

`address` is the registry (`myregistry.azurecr.io`): a base image named without it is looked up there, so the
address changes which image is meant and enters the key with the base reference (keys.canonical_spec). The user
name and password do not: they only open the door. The password is meant to come from a variable
(`${ACR_PASSWORD}`), expanded at pull time only; the environment is saved with the reference, never the value
(spec.azureml), and the pull hands the credentials to the engine for that one request (envbuild.private_base).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import SpecError

_VARIABLE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$|^\$[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class ContainerRegistry:
    address: str | None = None
    username: str | None = None
    password: str | None = None  # `${VAR}` (expanded when pulling), or a value that is never saved

    def qualify(self, image: str | None) -> str | None:
        """`image` as the engine should be asked for it: prefixed with the address unless it names a registry."""
        if not image or not self.address:
            return image
        address = self.address.strip().rstrip("/")
        address = re.sub(r"^[a-z]+://", "", address)
        first = image.split("/", 1)[0]
        if "/" in image and ("." in first or ":" in first or first == "localhost"):
            return image
        return f"{address}/{image}"

    def login(self) -> dict | None:
        """The credentials for a pull (`${VAR}`s expanded), or None without a user name."""
        if not self.username:
            return None
        password = os.path.expandvars(self.password or "")
        if self.password and _VARIABLE.match(self.password) and password == self.password:
            raise SpecError(f"docker.base_image_registry.password names {self.password}, which is not set",
                            fix=f"export {self.password.strip('${}')} before building")
        return {"username": os.path.expandvars(self.username), "password": password}

    def saved_password(self) -> str | None:
        """What `save_to_directory` may write: a variable reference; a value in clear is refused."""
        if not self.password:
            return None
        if not _VARIABLE.match(self.password):
            raise SpecError("docker.base_image_registry.password holds a password in clear, which envbuild does "
                            "not write to disk", fix="set it to a variable reference such as '${ACR_PASSWORD}' "
                                                     "and export that variable when building")
        return self.password
