//! The information-authenticity pledge (信息认证承诺) signed for children aged 0–6, who skip face
//! recognition. The version is recorded with each acceptance; changing the text means a new
//! version.

pub const PLEDGE_VERSION: &str = "2021-12-v1";

pub const PLEDGE_TEXT: &str = "本人承诺:所填报的亲属姓名、身份证号码真实准确,系本人亲属本人信息,\
并已获得该亲属(或其法定监护人)的授权。本人知悉亲属码仅用于疫情防控,\
瞒报、谎报信息或恶意绑定他人的,将依法承担法律责任。";
